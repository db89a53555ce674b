"""Run as a second user: read the metadata service with the Metaflow client API and print what it sees.

Usage: python metadata_client_check.py LINEAR_RUN FOREACH_RUN FAILED_RUN RESUMED_RUN
Prints one JSON document; tests/unit/test_metadata_client.py asserts on it. Also mutates tags of the
linear run through the client (`add_tag` / `remove_tag`) as this second user.
"""

import json
import sys

from metaflow import Flow, Metaflow, Run, Task, get_metadata, namespace
from metaflow.exception import MetaflowNamespaceMismatch


def main(linear_id: str, foreach_id: str, failed_id: str, resumed_id: str) -> dict:
    seen: dict = {"metadata": get_metadata()}

    # The default namespace is this user's: the first user's flows are not in it.
    try:
        Flow("MetadataLinearFlow")
        seen["own_namespace_sees_other_users_flow"] = True
    except MetaflowNamespaceMismatch:
        seen["own_namespace_sees_other_users_flow"] = False

    namespace(None)
    seen["flows"] = sorted(flow.id for flow in Metaflow())

    linear_flow = Flow("MetadataLinearFlow")
    linear = linear_flow.latest_run
    flaky = linear["flaky"].task
    first_attempt = Task(flaky.pathspec, attempt=0)
    seen["linear"] = {
        "latest_run": linear.id, "successful": linear.successful, "finished": linear.finished,
        "user": linear.end_task.metadata_dict.get("user"),
        "steps": sorted(step.id for step in linear),
        "tasks_per_step": {step.id: len(list(step)) for step in linear},
        "greeting": linear["start"].task.data.greeting,
        "numbers": linear["start"].task["numbers"].data,
        "result": linear.data.result,
        "flaky_current_attempt": flaky.current_attempt,
        "flaky_attempt_seen": flaky.data.attempt_seen,
        "flaky_successful": flaky.successful,
        "attempt0_attempt_seen": first_attempt.data.attempt_seen,
        "attempt0_successful": first_attempt.successful,
        "system_tags": sorted(linear.system_tags),
    }
    linear.add_tag("reviewed-by-bob")
    linear.remove_tag("keep-me")
    seen["linear"]["user_tags_after_client_mutation"] = sorted(Run(linear.pathspec).user_tags)

    namespace("user:alice")
    seen["alice_namespace_latest_linear"] = Flow("MetadataLinearFlow").latest_run.id
    namespace(None)

    foreach = Run(f"MetadataForeachFlow/{foreach_id}")
    join_task = foreach["join"].task
    seen["foreach"] = {
        "successful": foreach.successful,
        "shout_tasks": sorted(task.pathspec for task in foreach["shout"]),
        "shout_louds": sorted(task.data.loud for task in foreach["shout"]),
        "join_louds": join_task.data.louds,
        "join_parents": sorted(join_task.parent_task_pathspecs),
        "start_children": sorted(foreach["start"].task.child_task_pathspecs),
        "foreach_stacks": sorted(task.metadata_dict.get("foreach-stack") for task in foreach["shout"]),
    }

    resume_flow = Flow("MetadataResumeFlow")
    resumed = Run(f"MetadataResumeFlow/{resumed_id}")
    failed = Run(f"MetadataResumeFlow/{failed_id}")
    seen["resume"] = {
        "runs": sorted(run.id for run in resume_flow),
        "latest_successful": resume_flow.latest_successful_run.id,
        "failed_successful": failed.successful,
        "resumed_successful": resumed.successful,
        "origin_run_id": resumed["start"].task.metadata_dict.get("origin-run-id"),
        "seed": resumed["start"].task.data.seed,
        "final": resumed.data.final,
        "user_tags": sorted(resumed.user_tags),
    }
    return seen


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
