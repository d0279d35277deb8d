"""no_lost_writes: acknowledged writes survive; info writes may or may not; fail writes never show."""

from __future__ import annotations

from cluster.checkers.no_lost_writes import check
from tests.cluster.checkers.histories import delete, meta, point, read_all, upsert

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"


def test_acknowledged_writes_visible_pass() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0), point(UUID, 2.0)], 1.0, 1.1),
               read_all([point(1, 1.0), point(UUID, 2.0)])]
    result = check(history)
    assert result.valid is True, result
    assert result.details["ids_checked"] == 2


def test_acknowledged_write_missing_is_lost_with_its_op_id() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0)], 1.0, 1.1), *upsert(2, [point(2, 2.0)], 1.2, 1.3),
               read_all([point(1, 1.0)])]
    result = check(history)
    assert result.valid is False
    assert result.details["lost_ids"] == ["c/2"]
    assert result.details["lost_op_ids"] == [2]


def test_older_value_after_a_later_acknowledged_write_is_lost() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0, "old")], 1.0, 1.1), *upsert(2, [point(1, 5.0, "new")], 2.0, 2.1),
               read_all([point(1, 1.0, "old")])]
    result = check(history)
    assert result.valid is False
    assert result.details["problems"]["c/1"] == {"problem": "acknowledged write lost", "op_ids": [2]}


def test_later_delete_supersedes_the_upsert() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0)], 1.0, 1.1), *delete(2, [1], 2.0, 2.1), read_all([])]
    assert check(history).valid is True


def test_info_write_may_or_may_not_be_present() -> None:
    writes = [meta(), *upsert(1, [point(1, 1.0, "a")], 1.0, 1.1), *upsert(2, [point(1, 2.0, "b")], 2.0, None,
                                                                          completion="info")]
    assert check([*writes, read_all([point(1, 1.0, "a")])]).valid is True
    assert check([*writes, read_all([point(1, 2.0, "b")])]).valid is True


def test_info_delete_may_remove_an_acknowledged_write() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0)], 1.0, 1.1), *delete(2, [1], 2.0, None, completion=None),
               read_all([])]
    assert check(history).valid is True


def test_concurrent_writes_either_value_wins() -> None:
    writes = [meta(), *upsert(1, [point(1, 1.0, "a")], 1.0, 2.0), *upsert(2, [point(1, 2.0, "b")], 1.5, 2.5)]
    assert check([*writes, read_all([point(1, 1.0, "a")])]).valid is True
    assert check([*writes, read_all([point(1, 2.0, "b")])]).valid is True


def test_value_from_failed_write_is_a_violation() -> None:
    history = [meta(), *upsert(1, [point(1, 1.0, "a")], 1.0, 1.1),
               *upsert(2, [point(1, 9.0, "never")], 2.0, 2.1, completion="fail"),
               read_all([point(1, 9.0, "never")])]
    result = check(history)
    assert result.valid is False
    assert result.details["problems"]["c/1"] == {"problem": "value from a failed write", "op_ids": [2]}


def test_phantom_point_no_write_produced_is_a_violation() -> None:
    result = check([meta(), read_all([point(42, 1.0)])])
    assert result.valid is False
    assert result.details["problems"]["c/42"]["problem"] == "value no write produced"


def test_without_final_read_is_unknown() -> None:
    result = check([meta(), *upsert(1, [point(1, 1.0)], 1.0, 1.1)])
    assert result.valid is None
    assert "c" in result.summary
