"""snapshot_integrity: files match their sidecars and manifests; corrupt recoveries fail and change nothing."""

from __future__ import annotations

from typing import Any

from cluster.checkers.snapshot_integrity import check
from tests.cluster.checkers.histories import (
    digest,
    event,
    final_replicas,
    meta,
    op,
    placement_events,
    point,
    upsert,
)

SUM, OTHER_SUM = "ab" * 32, "cd" * 32
POINTS = [point(1, 1.0), point(2, 2.0)]
D = digest(POINTS)


def snapshot_file(**changes: Any) -> dict[str, Any]:
    entry = {"peer": 1, "collection": "c", "shard": 0, "name": "c-shard-0-2026.snapshot", "size": 1234,
             "checksum_sidecar": SUM, "checksum_actual": SUM, "digest_manifest": D, "digest_actual": D}
    return {**entry, **changes}


def files(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"type": "final", "time": 100.0, "f": "snapshot_files", "value": list(entries)}


def created(checksum: str) -> dict[str, Any]:
    return event(2.0, "snapshot.created", source="node/1", collection="c", shard=0,
                 name="c-shard-0-2026.snapshot", checksum=checksum, priority=None, size=1234)


def corrupt_recover(completion: str) -> list[dict[str, Any]]:
    return op(4, "snapshot_recover", {"collection": "c", "shard": 0, "peer": 1, "name": "c-shard-0-2026.snapshot",
                                      "priority": "snapshot", "checksum": None, "source": "upload",
                                      "corrupt": True}, 5.0, 5.5, completion=completion, error="corrupt")


def base() -> list[dict[str, Any]]:
    return [meta(), *placement_events({("c", 0): [1, 2]}), *upsert(1, POINTS, 1.0, 1.1), created(SUM)]


def test_intact_files_and_refused_corrupt_recovery_pass() -> None:
    history = [*base(), *corrupt_recover("fail"), files(snapshot_file()),
               final_replicas({("c", 0, 1): ("Active", D), ("c", 0, 2): ("Active", D)})]
    result = check(history)
    assert result.valid is True, result.details
    assert result.details["files_checked"] == 1


def test_sidecar_mismatch_fails() -> None:
    result = check([*base(), files(snapshot_file(checksum_sidecar=OTHER_SUM))])
    assert result.valid is False
    assert result.details["files"][0]["problem"] == "sidecar checksum differs from the file's SHA-256"


def test_missing_sidecar_fails() -> None:
    assert check([*base(), files(snapshot_file(checksum_sidecar=None))]).valid is False


def test_manifest_digest_mismatch_fails() -> None:
    result = check([*base(), files(snapshot_file(digest_manifest="0" * 64))])
    assert result.valid is False
    assert result.details["files"][0]["problem"] == "manifest digest differs from the points' digest"


def test_created_event_checksum_must_match_the_file() -> None:
    history = [*base()[:-1], created(OTHER_SUM), files(snapshot_file())]
    result = check(history)
    assert result.valid is False
    assert result.details["events"][0]["event_checksum"] == OTHER_SUM


def test_corrupt_recovery_that_succeeded_fails() -> None:
    result = check([*base(), *corrupt_recover("ok"), files(snapshot_file())])
    assert result.valid is False
    assert result.details["corrupt"][0] == {"op_id": 4, "problem": "corrupt recovery ended ok"}


def test_corrupt_recovery_that_failed_but_changed_data_fails() -> None:
    history = [*base(), *corrupt_recover("fail"), files(snapshot_file()),
               final_replicas({("c", 0, 1): ("Active", "0" * 64), ("c", 0, 2): ("Active", D)})]
    result = check(history)
    assert result.valid is False
    assert result.details["corrupt"][0]["replica"] == "c/0/1"
    assert result.details["corrupt"][0]["expected_digest"] == D


def test_nothing_to_check_is_unknown() -> None:
    assert check([meta()]).valid is None
