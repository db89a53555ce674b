"""What an S3 key in a team bucket belongs to, read from the key alone.

The bucket layout (dsstack.naming): `metaflow/` is Metaflow's datastore root, `data/` its datatools root,
`models/<name>/...` registered model versions. Metaflow's datastore writes
`metaflow/<flow>/<run>/<step>/<task>/<file>` for task artifacts and metadata and
`metaflow/<flow>/data/<xx>/<sha>` for content-addressed blobs (artifacts, code packages); `S3(run=self)`
writes `data/<flow>/<run>/<key>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

METAFLOW_PREFIX = "metaflow/"
DATATOOLS_PREFIX = "data/"
MODELS_PREFIX = "models/"
CATALOGED_PREFIXES = (METAFLOW_PREFIX, DATATOOLS_PREFIX, MODELS_PREFIX)

# Metaflow run ids: integers (local or metadata service) or an orchestrator prefix plus the execution name.
_RUN_ID = re.compile(r"^(?:\d+|(?:sfn|argo|airflow)-[^/]+)$")


class ObjectKind(StrEnum):
    METAFLOW_TASK = "metaflow_task"  # metaflow/<flow>/<run>/<step>/<task>/...
    METAFLOW_RUN = "metaflow_run"  # metaflow/<flow>/<run>/<file> (no step/task in the key)
    METAFLOW_BLOB = "metaflow_blob"  # metaflow/<flow>/data/... content-addressed
    METAFLOW_OTHER = "metaflow_other"  # metaflow/<flow>/<file> and anything else under metaflow/
    DATATOOLS = "datatools"  # data/...
    MODEL = "model"  # models/<name>/<file>: a model version
    MODELS_OTHER = "models_other"  # under models/ but not models/<name>/<file> (e.g. a folder marker)


@dataclass(frozen=True, slots=True)
class KeyAttribution:
    kind: ObjectKind
    flow: str | None = None
    run_id: str | None = None
    step: str | None = None
    task: str | None = None
    model: str | None = None

    @property
    def is_model_version(self) -> bool:
        return self.kind is ObjectKind.MODEL


def is_cataloged(key: str) -> bool:
    return key.startswith(CATALOGED_PREFIXES)


def attribute_key(key: str) -> KeyAttribution:
    """Classify a key under one of the cataloged prefixes. Raises ValueError for any other key."""
    if key.startswith(METAFLOW_PREFIX):
        return _metaflow(key[len(METAFLOW_PREFIX):].split("/"))
    if key.startswith(DATATOOLS_PREFIX):
        parts = key[len(DATATOOLS_PREFIX):].split("/")
        # Only `S3(run=...)` keys name their run; arbitrary datatools keys (s3root=...) belong to no run.
        if len(parts) >= 3 and parts[0] and _RUN_ID.match(parts[1]) and parts[2]:
            return KeyAttribution(ObjectKind.DATATOOLS, flow=parts[0], run_id=parts[1])
        return KeyAttribution(ObjectKind.DATATOOLS)
    if key.startswith(MODELS_PREFIX):
        name, _, rest = key[len(MODELS_PREFIX):].partition("/")
        # A version is a file: models/<name>/ itself or models/<name>/dir/ are folder markers.
        if name and rest and not rest.endswith("/"):
            return KeyAttribution(ObjectKind.MODEL, model=name)
        return KeyAttribution(ObjectKind.MODELS_OTHER)
    raise ValueError(f"key {key!r} is outside the cataloged prefixes {list(CATALOGED_PREFIXES)}")


def _metaflow(parts: list[str]) -> KeyAttribution:
    flow = parts[0] or None
    if flow is None or len(parts) < 2:
        return KeyAttribution(ObjectKind.METAFLOW_OTHER, flow=flow)
    if parts[1] == "data":
        return KeyAttribution(ObjectKind.METAFLOW_BLOB, flow=flow)
    if len(parts) == 2:
        return KeyAttribution(ObjectKind.METAFLOW_OTHER, flow=flow)
    run_id = parts[1]
    if len(parts) >= 5 and parts[2] and parts[3]:
        return KeyAttribution(ObjectKind.METAFLOW_TASK, flow=flow, run_id=run_id, step=parts[2], task=parts[3])
    return KeyAttribution(ObjectKind.METAFLOW_RUN, flow=flow, run_id=run_id)
