"""Load: 10,000 object events (10% duplicates, shuffled) through the versioning handler against moto.

Exactly the expected catalog items, no duplicate or missing model versions, nothing lost. Prints the time
it took (moto in-process; see bench/versioning.py for events/second against a bare boto3 loop).
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_support import (
    CATALOG_TABLE,
    Versioning,
    object_created_event,
    scan_all,
    versioning_environment,
)

EVENTS = 10_000
DUPLICATE_SHARE = 0.10
MODELS = ("churn", "fraud", "ltv", "ranker", "vision")


@pytest.fixture
def versioning(monkeypatch: pytest.MonkeyPatch) -> Iterator[Versioning]:
    with versioning_environment(monkeypatch) as environment:
        yield environment


def unique_events(count: int, rng: random.Random) -> list[dict]:
    """Mostly Metaflow task artifacts, some datatools objects, one in 450 a model version.

    Few model versions, as in real runs (hundreds of artifacts per model), and because moto deep-copies the
    whole table for every item of every transaction (~0.4 s per model version at 9,000 items).
    """
    events = []
    for n in range(count):
        version_id, sequencer = f"v{n:06d}", f"{0x617F08299329D189 + n:X}"
        if n % 450 == 0:
            key = f"models/{MODELS[n // 450 % len(MODELS)]}/model.tar.gz"  # one key per model, many versions
        elif n % 10 == 1:
            key = f"data/TrainFlow/sfn-{n % 7}/features-{n}.parquet"
        else:
            key = f"metaflow/TrainFlow/sfn-{n % 7}/train/{n}/0.data.json"
        events.append(object_created_event(key, version_id=version_id, sequencer=sequencer, size=rng.randint(0, 10**9)))
    return events


def test_ten_thousand_events_with_duplicates_make_exactly_the_expected_catalog(
    versioning: Versioning, capsys: pytest.CaptureFixture
) -> None:
    rng = random.Random(20240501)
    duplicates = int(EVENTS * DUPLICATE_SHARE)
    originals = unique_events(EVENTS - duplicates, rng)
    # Duplicates are either EventBridge redeliveries (same event) or S3 repeats (same object, new event id).
    stream = originals + [
        dict(original, id=f"repeat-{n}") if n % 2 else original
        for n, original in enumerate(rng.choices(originals, k=duplicates))
    ]
    rng.shuffle(stream)  # and so out of order too
    assert len(stream) == EVENTS

    started = time.perf_counter()
    for event in stream:
        versioning.invoke(event)
    elapsed = time.perf_counter() - started

    items = scan_all(CATALOG_TABLE)
    by_type = Counter(item["type"]["S"] for item in items)
    model_events = [e for e in originals if e["detail"]["object"]["key"].startswith("models/")]
    assert by_type["object"] == len(originals)
    assert by_type["model_version"] == by_type["version_claim"] == len(model_events)
    assert by_type["model"] == len(MODELS)
    stored_objects = {(i["key"]["S"], i["s3_version_id"]["S"]) for i in items if i["type"]["S"] == "object"}
    assert stored_objects == {(e["detail"]["object"]["key"], e["detail"]["object"]["version-id"]) for e in originals}
    for model in MODELS:
        versions = list(versioning.catalog.model_versions(model, newest_first=False))
        expected = [e for e in model_events if e["detail"]["object"]["key"] == f"models/{model}/model.tar.gz"]
        assert [v.version for v in versions] == list(range(1, len(expected) + 1))
        assert sorted(v.object.s3_version_id for v in versions) == sorted(
            e["detail"]["object"]["version-id"] for e in expected
        )
    with capsys.disabled():
        print(f"\nload: {EVENTS} events ({duplicates} duplicates) in {elapsed:.1f} s = {EVENTS / elapsed:.0f} events/s")

