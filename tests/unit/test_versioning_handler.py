"""lambda/versioning/handler.py in-process against moto: each event type, duplicates, out-of-order arrival,
events it must refuse, and generated malformed events."""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dsstack_events import MalformedEventError, PoisonEventError, UnexpectedEventError
from dsstack_events.runtime import ConfigurationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_support import (
    BUCKET,
    CATALOG_TABLE,
    STATE_MACHINE_PREFIX,
    Versioning,
    execution_status_event,
    load_handler,
    object_created_event,
    scan_all,
    versioning_environment,
)

handler = load_handler("versioning")


@pytest.fixture
def versioning(monkeypatch: pytest.MonkeyPatch) -> Iterator[Versioning]:
    with versioning_environment(monkeypatch) as environment:
        yield environment


# ------------------------------------------------------------------------------------------ objects
def test_a_metaflow_task_artifact_becomes_an_object_item_with_its_run(versioning: Versioning) -> None:
    key = "metaflow/TrainFlow/sfn-abc/train/7/0.data.json"
    result = versioning.invoke(object_created_event(key, version_id="v1", sequencer="617F08299329D189", size=42))
    assert result["new"] is True and result["kind"] == "metaflow_task"
    (stored,) = versioning.catalog.object_versions(key)
    assert (stored.bucket, stored.s3_version_id, stored.size, stored.etag) == (BUCKET, "v1", 42,
                                                                              "b1946ac92492d2347c6235b4d2611184")
    assert stored.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert (stored.flow, stored.run_id, stored.step, stored.task) == ("TrainFlow", "sfn-abc", "train", "7")
    assert list(versioning.catalog.run_objects("TrainFlow", "sfn-abc")) == [stored]


@pytest.mark.parametrize(
    ("key", "kind", "flow"),
    [("metaflow/TrainFlow/data/ab/abcdef", "metaflow_blob", "TrainFlow"), ("data/raw/file.csv", "datatools", None)],
)
def test_blobs_and_datatools_objects_are_cataloged(versioning: Versioning, key: str, kind: str, flow: str) -> None:
    versioning.invoke(object_created_event(key))
    (stored,) = versioning.catalog.object_versions(key)
    assert (stored.kind, stored.flow) == (kind, flow)


def test_model_objects_get_consecutive_version_numbers(versioning: Versioning) -> None:
    key = "models/churn/model.tar.gz"
    first = versioning.invoke(object_created_event(key, version_id="a", sequencer="0A"))
    second = versioning.invoke(object_created_event(key, version_id="b", sequencer="0B"))
    other = versioning.invoke(object_created_event("models/fraud/2024/model.tar.gz", version_id="c"))
    assert (first["model_version"], second["model_version"], other["model_version"]) == (1, 2, 1)
    latest = versioning.catalog.latest_model_version("churn")
    assert latest is not None and (latest.version, latest.object.s3_version_id) == (2, "b")
    assert [o.s3_version_id for o in versioning.catalog.object_versions(key)] == ["b", "a"]


def test_a_folder_marker_under_models_is_an_object_but_not_a_version(versioning: Versioning) -> None:
    result = versioning.invoke(object_created_event("models/churn/", size=0))
    assert result["kind"] == "models_other" and "model_version" not in result
    assert versioning.catalog.latest_model_version("churn") is None
    assert len(list(versioning.catalog.object_versions("models/churn/"))) == 1


def test_duplicate_deliveries_leave_one_item_and_one_version(versioning: Versioning) -> None:
    event = object_created_event("models/churn/model.tar.gz", version_id="a", event_id="same-id")
    versioning.invoke(event)
    versioning.invoke(copy.deepcopy(event))  # EventBridge redelivery: same event id
    redelivered_by_s3 = object_created_event("models/churn/model.tar.gz", version_id="a")  # new event id
    assert versioning.invoke(redelivered_by_s3)["model_version"] == 1
    handler.runtime.cache_clear()  # a different container: no local idempotency cache, DynamoDB decides
    assert versioning.invoke(object_created_event("models/churn/model.tar.gz", version_id="a"))["model_version"] == 1
    assert [v.version for v in versioning.catalog.model_versions("churn")] == [1]
    assert len([i for i in scan_all(CATALOG_TABLE) if i["type"]["S"] == "object"]) == 1


def test_versions_arriving_newest_first_are_numbered_without_gaps(versioning: Versioning) -> None:
    key = "models/churn/model.tar.gz"
    for version_id, sequencer in [("c", "0C"), ("a", "0A"), ("b", "0B")]:
        versioning.invoke(object_created_event(key, version_id=version_id, sequencer=sequencer))
    numbered = {v.object.s3_version_id: v.version for v in versioning.catalog.model_versions("churn")}
    assert numbered == {"c": 1, "a": 2, "b": 3}  # registration order; the S3 order stays on the object items
    assert [o.s3_version_id for o in versioning.catalog.object_versions(key)] == ["c", "b", "a"]


# -------------------------------------------------------------------------------------------- runs
def test_execution_status_changes_become_the_run_record(versioning: Versioning) -> None:
    versioning.invoke(execution_status_event("TrainFlow", "exec-1", "RUNNING"))
    result = versioning.invoke(
        execution_status_event("TrainFlow", "exec-1", "FAILED", stop_ms=1_714_564_900_000,
                               error="States.TaskFailed", cause="step train failed: exit 1")
    )
    assert result == {"recorded": "run", "flow": "TrainFlow", "run_id": "sfn-exec-1", "status": "FAILED",
                      "applied": True}
    (run,) = versioning.catalog.runs("TrainFlow")
    assert (run.status, run.error, run.cause) == ("FAILED", "States.TaskFailed", "step train failed: exit 1")
    assert run.started_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert run.stopped_at == datetime(2024, 5, 1, 12, 1, 40, tzinfo=UTC)
    assert run.state_machine == f"{STATE_MACHINE_PREFIX}_TrainFlow"


def test_a_late_running_event_does_not_undo_success(versioning: Versioning) -> None:
    versioning.invoke(execution_status_event("TrainFlow", "exec-1", "SUCCEEDED", stop_ms=1_714_564_900_000))
    assert versioning.invoke(execution_status_event("TrainFlow", "exec-1", "RUNNING"))["applied"] is False
    assert [r.status for r in versioning.catalog.runs("TrainFlow")] == ["SUCCEEDED"]


def test_state_machine_named_with_the_prefix_only_is_accepted(versioning: Versioning) -> None:
    event = execution_status_event("Flow", "e", "RUNNING", state_machine=f"{STATE_MACHINE_PREFIX}ScoreFlow")
    assert versioning.invoke(event)["flow"] == "ScoreFlow"


# -------------------------------------------------------------------------------- refused events
@pytest.mark.parametrize(
    ("event", "error", "reason"),
    [
        (object_created_event("metaflow/F/1/s/2/x", bucket="someone-elses"), UnexpectedEventError, "bucket"),
        (object_created_event("tmp/scratch.bin"), UnexpectedEventError, "outside"),
        (object_created_event("models/churn/m.tar.gz", version_id=None), UnexpectedEventError, "versioning"),
        (object_created_event("models/churn/m.tar.gz", version_id="null"), UnexpectedEventError, "versioning"),
        (object_created_event("models/churn/m.tar.gz", sequencer=None), MalformedEventError, "sequencer"),
        (object_created_event("models/churn/m.tar.gz", sequencer=":"), MalformedEventError, "hex digits"),
        (execution_status_event("F", "e", "RUNNING", state_machine="other-team-F"), UnexpectedEventError, "prefix"),
        (execution_status_event("F", "e", "EXPLODED"), MalformedEventError, "status"),
        ({**object_created_event("x"), "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"},
         UnexpectedEventError, "EventBridge rules"),
        ({"hello": "world"}, MalformedEventError, "not an EventBridge event"),
        (["not", "an", "object"], MalformedEventError, "JSON object"),
    ],
)
def test_refused_events_are_logged_and_raised(
    versioning: Versioning, event: Any, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        versioning.invoke(event)
    (logged,) = versioning.refusals
    assert logged.refusal == error.__name__ and reason in logged.reason
    assert logged.levelno == logging.ERROR
    assert scan_all(CATALOG_TABLE) == []


def test_a_refused_event_does_not_block_the_next_one(versioning: Versioning) -> None:
    with pytest.raises(PoisonEventError):
        versioning.invoke(object_created_event("models/churn/m.tar.gz", version_id=None))
    assert versioning.invoke(object_created_event("models/churn/m.tar.gz"))["model_version"] == 1


def test_missing_configuration_is_named(versioning: Versioning, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUCKET_NAME")
    handler.runtime.cache_clear()
    with pytest.raises(ConfigurationError, match="BUCKET_NAME"):
        versioning.invoke(object_created_event("data/x"))


# ------------------------------------------------------------------------ generated malformed events
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for name, child in value.items():
            paths += _paths(child, (*prefix, name))
    return paths


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A valid S3 or Step Functions event with one field removed or replaced by arbitrary JSON."""
    base = draw(st.sampled_from([
        object_created_event("models/churn/m.tar.gz"),
        object_created_event("metaflow/F/sfn-1/s/2/0.data.json"),
        execution_status_event("TrainFlow", "e", "FAILED", stop_ms=1_714_564_900_000),
    ]))
    event = copy.deepcopy(base)
    path = draw(st.sampled_from(_paths(event)))
    parent = event
    for name in path[:-1]:
        parent = parent[name]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return event


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.one_of(mutated_events(), json_values))
def test_generated_events_are_either_cataloged_or_refused_loudly(versioning: Versioning, event: Any) -> None:
    versioning.refusals.clear()
    before = len(scan_all(CATALOG_TABLE))
    try:
        result = versioning.invoke(event)
    except PoisonEventError as error:
        assert [r.refusal for r in versioning.refusals] == [type(error).__name__], "refused without a log line"
        assert len(scan_all(CATALOG_TABLE)) == before
        return
    # Still valid after the mutation (e.g. an optional field changed): then it was really recorded.
    assert result["recorded"] in ("object", "run")
    if result["recorded"] == "object":
        assert any(o.s3_version_id == result["s3_version_id"] for o in versioning.catalog.object_versions(result["key"]))
    else:
        assert any(r.run_id == result["run_id"] for r in versioning.catalog.runs(result["flow"]))
