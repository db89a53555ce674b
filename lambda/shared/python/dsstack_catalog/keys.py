"""The catalog's key design: every partition and sort key the catalog writes or queries is built here.

One DynamoDB table per team (fixed schema: `pk`/`sk` strings, GSI `gsi1` on `gsi1pk`/`gsi1sk`, TTL `ttl`).
docs/catalog.md has the table of item types and the query behind each question the catalog answers.

Sort keys are built so that lexicographic order is the order people ask for: model version numbers are
zero-padded, S3 sequencers are right-padded (how S3 says to compare them), times are ISO-8601 UTC with
milliseconds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

SEP = "#"

# Item types, stored in the `type` attribute of every item so a scan or an export can tell them apart.
TYPE_OBJECT = "object"
TYPE_MODEL = "model"
TYPE_MODEL_VERSION = "model_version"
TYPE_VERSION_CLAIM = "version_claim"
TYPE_RUN = "run"
TYPE_PROMOTION = "promotion"
TYPE_PROMOTION_EVENT = "promotion_event"

# Model version numbers are zero-padded to this width so sort order is numeric order (10 digits > 2^32).
VERSION_DIGITS = 10
# S3 sequencers are hex strings of varying length; S3 documents comparing them after right-padding the
# shorter one with zeros. 32 covers every length S3 has produced (16 to 18 today).
SEQUENCER_WIDTH = 32

MODEL_SK = "MODEL"
MODELS_GSI_PK = "MODELS"
PROMOTION_SK = "PROMOTION"
PROMOTION_HISTORY_PREFIX = "PROMOTION" + SEP
VERSION_PREFIX = "V" + SEP
CLAIM_PREFIX = "CLAIM" + SEP
RUN_PREFIX = "RUN" + SEP
RUN_GSI_SK = "RUN"
RUN_OBJECT_GSI_PREFIX = "OBJ" + SEP


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, e.g. 2024-05-01T12:00:00.000Z; sorts chronologically."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment!r} has no time zone; the catalog stores UTC only")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """Now, truncated to the milliseconds the catalog stores, so a written record equals its read-back."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_version(number: int) -> str:
    if not 1 <= number < 10**VERSION_DIGITS:
        raise ValueError(f"model version must be between 1 and {10**VERSION_DIGITS - 1}, got {number}")
    return f"{number:0{VERSION_DIGITS}d}"


def sortable_sequencer(sequencer: str) -> str:
    """S3's sequencer, right-padded with zeros so plain string order is event order for one key."""
    value = sequencer.strip().upper()
    if not value or len(value) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in value):
        raise ValueError(f"S3 sequencer must be 1 to {SEQUENCER_WIDTH} hex digits, got {sequencer!r}")
    return value.ljust(SEQUENCER_WIDTH, "0")


# ------------------------------------------------------------------------------------------- objects
def object_pk(key: str) -> str:
    return "OBJ" + SEP + key


def object_sk(sequencer: str, s3_version_id: str) -> str:
    """Newest version of a key first with ScanIndexForward=False; the version id makes it unique."""
    return VERSION_PREFIX + sortable_sequencer(sequencer) + SEP + s3_version_id


def run_gsi_pk(flow: str, run_id: str) -> str:
    """gsi1 partition that gathers a run record and every object the run wrote."""
    return "RUN" + SEP + flow + SEP + run_id


def run_object_gsi_sk(step: str | None, task: str | None, key: str, s3_version_id: str) -> str:
    return RUN_OBJECT_GSI_PREFIX + SEP.join((step or "", task or "", key, s3_version_id))


# -------------------------------------------------------------------------------------------- models
def model_pk(model: str) -> str:
    return "MODEL" + SEP + model


def model_version_sk(number: int) -> str:
    return VERSION_PREFIX + format_version(number)


def version_claim_sk(key: str, s3_version_id: str) -> str:
    """One claim per S3 object version: the idempotency guard that stops a second number being issued.

    Hashed because an S3 key can be 1,024 bytes, which is also DynamoDB's sort key limit.
    """
    digest = hashlib.sha256(f"{key}\x00{s3_version_id}".encode()).hexdigest()
    return CLAIM_PREFIX + digest


def promotion_event_sk(promoted_at: datetime, to_version: int) -> str:
    return PROMOTION_HISTORY_PREFIX + format_time(promoted_at) + SEP + format_version(to_version)


# ---------------------------------------------------------------------------------------------- runs
def flow_pk(flow: str) -> str:
    return "FLOW" + SEP + flow


def run_sk(started_at: datetime, execution_name: str) -> str:
    """Newest run first with ScanIndexForward=False; the start time never changes for an execution."""
    return RUN_PREFIX + format_time(started_at) + SEP + execution_name
