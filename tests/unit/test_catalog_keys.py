"""The catalog's key design and S3 key attribution: pure functions, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dsstack_catalog import ObjectKind, attribute_key, is_cataloged, keys
from hypothesis import given
from hypothesis import strategies as st

hex_sequencers = st.text(alphabet="0123456789ABCDEF", min_size=16, max_size=18)


@given(st.integers(1, 10**9), st.integers(1, 10**9))
def test_model_version_sort_keys_sort_like_the_numbers(a: int, b: int) -> None:
    assert (keys.model_version_sk(a) < keys.model_version_sk(b)) == (a < b)


@given(hex_sequencers, hex_sequencers)
def test_sequencer_order_is_the_order_s3_documents(a: str, b: str) -> None:
    # S3: right-pad the shorter sequencer with zeros, then compare; the greater one happened later.
    width = max(len(a), len(b))
    expected = a.ljust(width, "0") < b.ljust(width, "0")
    assert (keys.object_sk(a, "v") < keys.object_sk(b, "v")) == expected


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 33, "12 34"])
def test_invalid_sequencer_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="sequencer"):
        keys.sortable_sequencer(bad)


def test_times_are_utc_milliseconds_and_sort_chronologically() -> None:
    base = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert keys.format_time(base) == "2024-05-01T12:00:00.123Z"
    plus_two = base.astimezone(timezone(timedelta(hours=2)))
    assert keys.format_time(plus_two) == keys.format_time(base)
    assert keys.format_time(base) < keys.format_time(base + timedelta(milliseconds=1))
    with pytest.raises(ValueError, match="time zone"):
        keys.format_time(datetime(2024, 5, 1))


def test_version_claim_key_fits_dynamodb_limits_for_the_longest_s3_key() -> None:
    longest_key = "models/m/" + "k" * (1024 - len("models/m/"))
    claim = keys.version_claim_sk(longest_key, "v" * 32)
    assert len(claim.encode()) < 1024
    assert claim != keys.version_claim_sk(longest_key, "w" * 32)


@pytest.mark.parametrize(
    ("key", "kind", "fields"),
    [
        ("metaflow/TrainFlow/sfn-abc/train/7/0.data.json", ObjectKind.METAFLOW_TASK,
         {"flow": "TrainFlow", "run_id": "sfn-abc", "step": "train", "task": "7"}),
        ("metaflow/TrainFlow/1714/_parameters/1/0.attempt.json", ObjectKind.METAFLOW_TASK,
         {"flow": "TrainFlow", "run_id": "1714", "step": "_parameters", "task": "1"}),
        ("metaflow/TrainFlow/data/ab/abcdef0123", ObjectKind.METAFLOW_BLOB, {"flow": "TrainFlow", "run_id": None}),
        ("metaflow/TrainFlow/1714/something", ObjectKind.METAFLOW_RUN, {"flow": "TrainFlow", "run_id": "1714"}),
        ("metaflow/TrainFlow", ObjectKind.METAFLOW_OTHER, {"flow": "TrainFlow"}),
        ("data/TrainFlow/sfn-abc/features.parquet", ObjectKind.DATATOOLS, {"flow": "TrainFlow", "run_id": "sfn-abc"}),
        ("data/raw/latest/file.csv", ObjectKind.DATATOOLS, {"flow": None, "run_id": None}),
        ("data/features.parquet", ObjectKind.DATATOOLS, {"flow": None, "run_id": None}),
        ("models/churn/2024-05-01/model.tar.gz", ObjectKind.MODEL, {"model": "churn"}),
        ("models/churn/", ObjectKind.MODELS_OTHER, {"model": None}),
        ("models/churn/dir/", ObjectKind.MODELS_OTHER, {"model": None}),
        ("models/loose-file", ObjectKind.MODELS_OTHER, {"model": None}),
    ],
)
def test_keys_are_attributed_to_what_they_belong_to(key: str, kind: ObjectKind, fields: dict) -> None:
    attribution = attribute_key(key)
    assert attribution.kind is kind
    for name, value in fields.items():
        assert getattr(attribution, name) == value
    assert attribution.is_model_version == (kind is ObjectKind.MODEL)


@given(st.text(min_size=1, max_size=200))
def test_every_key_is_either_attributed_or_refused_with_a_clear_error(key: str) -> None:
    if is_cataloged(key):
        assert isinstance(attribute_key(key).kind, ObjectKind)
    else:
        with pytest.raises(ValueError, match="outside the cataloged prefixes"):
            attribute_key(key)
