"""dsstack_catalog.Catalog against a moto DynamoDB table with the real catalog schema."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from dsstack_catalog import (
    Catalog,
    ObjectVersion,
    PromotionConflictError,
    RunRecord,
    UnknownModelVersionError,
)
from dsstack_catalog import catalog as catalog_module

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_support import CATALOG_TABLE, create_catalog_table, mocked_aws, serialize_moto_requests

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    with mocked_aws(monkeypatch):
        create_catalog_table()
        yield Catalog(CATALOG_TABLE)


def model_object(name: str, n: int, *, sequencer: str | None = None) -> ObjectVersion:
    return ObjectVersion(
        bucket="b",
        key=f"models/{name}/model.tar.gz",
        s3_version_id=f"s3v-{n}",
        sequencer=sequencer or f"{0x617F08299329D189 + n:X}",
        size=100 + n,
        etag=f"etag-{n}",
        created_at=T0 + timedelta(seconds=n),
        kind="model",
    )


def test_versions_are_numbered_from_one_and_latest_is_the_highest(catalog: Catalog) -> None:
    numbers = [catalog.register_model_version("churn", model_object("churn", n)).version.version for n in range(3)]
    assert numbers == [1, 2, 3]
    latest = catalog.latest_model_version("churn")
    assert latest is not None and latest.version == 3 and latest.object.s3_version_id == "s3v-2"
    assert [v.version for v in catalog.model_versions("churn")] == [3, 2, 1]
    assert [v.version for v in catalog.model_versions("churn", newest_first=False)] == [1, 2, 3]
    behind_two = catalog.model_version("churn", 2)
    assert behind_two is not None
    assert (behind_two.object.key, behind_two.object.s3_version_id) == ("models/churn/model.tar.gz", "s3v-1")
    assert catalog.latest_model_version("unknown") is None
    assert catalog.models() == ["churn"]


def test_registering_the_same_s3_version_again_returns_its_number(catalog: Catalog) -> None:
    first = catalog.register_model_version("churn", model_object("churn", 1))
    again = catalog.register_model_version("churn", model_object("churn", 1))
    assert first.newly_registered and not again.newly_registered
    assert again.version == first.version
    assert [v.version for v in catalog.model_versions("churn")] == [1]


def test_models_are_numbered_independently(catalog: Catalog) -> None:
    catalog.register_model_version("churn", model_object("churn", 1))
    catalog.register_model_version("churn", model_object("churn", 2))
    assert catalog.register_model_version("fraud", model_object("fraud", 1)).version.version == 1
    assert catalog.models() == ["churn", "fraud"]


def test_concurrent_writers_get_gapless_unique_numbers(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads share one moto backend; each S3 version is registered by two racing threads."""
    serialize_moto_requests(monkeypatch)
    versions = 40
    lost_races = []
    real_sleep = catalog_module.time.sleep
    monkeypatch.setattr(catalog_module.time, "sleep", lambda seconds: (lost_races.append(seconds), real_sleep(seconds)))
    barrier = threading.Barrier(versions * 2)
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register(writer: Catalog, n: int) -> None:
        try:
            barrier.wait()
            outcome = writer.register_model_version("churn", model_object("churn", n))
            with lock:
                results.append((outcome.version.object.s3_version_id, outcome.version.version))
        except BaseException as error:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(error)

    # One client per writer, as separate Lambda containers would have.
    writers = [Catalog(CATALOG_TABLE, client=boto3.client("dynamodb")) for _ in range(versions * 2)]
    threads = [threading.Thread(target=register, args=(writers[n], n % versions)) for n in range(versions * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert lost_races, "the writers never raced; the test would not show anything"
    number_of = {}
    for s3_version_id, number in results:
        assert number_of.setdefault(s3_version_id, number) == number, "one S3 version got two numbers"
    assert sorted(number_of.values()) == list(range(1, versions + 1))
    stored = [(v.version, v.object.s3_version_id) for v in catalog.model_versions("churn", newest_first=False)]
    assert [number for number, _ in stored] == list(range(1, versions + 1))
    assert {s3v: n for n, s3v in stored} == number_of


def test_object_versions_are_listed_newest_first_by_sequencer(catalog: Catalog) -> None:
    # Written out of order: 18-digit sequencer is later than the 16-digit one once right-padded.
    for sequencer, version in [("617F08299329D18A", "b"), ("617F08299329D189", "a"), ("617F08299329D18A00", "c")]:
        catalog.put_object_version(
            ObjectVersion(bucket="b", key="data/x.csv", s3_version_id=version, sequencer=sequencer, size=1,
                          etag="e", created_at=T0)
        )
    assert [o.s3_version_id for o in catalog.object_versions("data/x.csv")] == ["c", "b", "a"]
    assert [o.s3_version_id for o in catalog.object_versions("data/x.csv", limit=1)] == ["c"]


def test_putting_an_object_version_twice_reports_the_duplicate(catalog: Catalog) -> None:
    obj = ObjectVersion(bucket="b", key="data/x.csv", s3_version_id="a", sequencer="01", size=1, etag="e",
                        created_at=T0, flow="F", run_id="1", step="s", task="2")
    assert catalog.put_object_version(obj) is True
    assert catalog.put_object_version(obj) is False
    assert list(catalog.object_versions("data/x.csv")) == [obj]
    assert list(catalog.run_objects("F", "1")) == [obj]


def run(status: str, *, execution: str = "e1", start: datetime = T0, redrive: int = 0) -> RunRecord:
    return RunRecord(flow="TrainFlow", run_id=f"sfn-{execution}", execution_arn=f"arn:...:{execution}",
                     execution_name=execution, state_machine="sm", status=status, started_at=start,
                     redrive_count=redrive)


def test_a_run_keeps_its_latest_status_whatever_order_events_arrive_in(catalog: Catalog) -> None:
    assert catalog.record_run(run("SUCCEEDED")) is True
    assert catalog.record_run(run("RUNNING")) is False  # late RUNNING after the terminal status
    assert catalog.record_run(run("SUCCEEDED")) is False  # duplicate
    assert [r.status for r in catalog.runs("TrainFlow")] == ["SUCCEEDED"]


def test_a_redriven_run_moves_on_from_its_failure(catalog: Catalog) -> None:
    for status, redrive in [("RUNNING", 0), ("FAILED", 0), ("PENDING_REDRIVE", 0), ("RUNNING", 1), ("SUCCEEDED", 1)]:
        assert catalog.record_run(run(status, redrive=redrive)) is True
    assert catalog.record_run(run("FAILED", redrive=0)) is False
    assert [(r.status, r.redrive_count) for r in catalog.runs("TrainFlow")] == [("SUCCEEDED", 1)]


def test_runs_of_a_flow_come_newest_first(catalog: Catalog) -> None:
    for n in range(5):
        catalog.record_run(run("RUNNING", execution=f"e{n}", start=T0 + timedelta(minutes=n)))
    assert [r.execution_name for r in catalog.runs("TrainFlow")] == ["e4", "e3", "e2", "e1", "e0"]
    assert [r.execution_name for r in catalog.runs("TrainFlow", limit=2)] == ["e4", "e3"]
    assert list(catalog.runs("OtherFlow")) == []


def test_promotions_are_recorded_with_history_and_guarded_against_races(catalog: Catalog) -> None:
    for n in range(3):
        catalog.register_model_version("churn", model_object("churn", n))
    first = catalog.record_promotion("churn", to_version=1, from_version=None, promoted_by="alice", promoted_at=T0)
    second = catalog.record_promotion("churn", to_version=3, from_version=1, promoted_by="bob",
                                      promoted_at=T0 + timedelta(hours=1), note="better AUC")
    assert catalog.current_promotion("churn") == second
    assert list(catalog.promotion_history("churn")) == [second, first]
    with pytest.raises(PromotionConflictError, match="serving version 3 \\(by bob\\)"):
        catalog.record_promotion("churn", to_version=2, from_version=1, promoted_by="carol")
    with pytest.raises(UnknownModelVersionError, match="no version 9"):
        catalog.record_promotion("churn", to_version=9, from_version=3, promoted_by="carol")
    assert catalog.current_promotion("churn") == second
    with pytest.raises(ValueError, match="who promoted"):
        catalog.record_promotion("churn", to_version=2, from_version=3, promoted_by="")


def test_the_first_promotion_may_start_from_the_configured_initial_version(catalog: Catalog) -> None:
    catalog.register_model_version("churn", model_object("churn", 1))
    catalog.register_model_version("churn", model_object("churn", 2))
    promotion = catalog.record_promotion("churn", to_version=2, from_version=1, promoted_by="alice")
    assert catalog.current_promotion("churn") == promotion
