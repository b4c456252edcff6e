"""ConditionSet: Ready derived from dependents, False beats Unknown, transition times."""

from __future__ import annotations

import datetime

from serving.apis.conditions import Condition, ConditionSet, Status, stamp_transition_times

T0 = "2024-01-01T00:00:00Z"
T1 = "2024-01-01T00:00:10Z"
T2 = "2024-01-01T00:00:20Z"
SET = ConditionSet("A", "B")


def conditions(status: Status) -> dict[str, tuple[str, str | None, str | None]]:
    return {c.type: (c.status, c.reason, c.last_transition_time) for c in status.conditions or []}


def test_initialize_marks_everything_unknown() -> None:
    status = Status()
    SET.manage(status, now=T0).initialize()
    assert conditions(status) == {"A": ("Unknown", None, T0), "B": ("Unknown", None, T0), "Ready": ("Unknown", None, T0)}


def test_ready_when_all_dependents_true() -> None:
    status = Status()
    SET.manage(status, now=T0).initialize()
    SET.manage(status, now=T1).mark_true("A")
    assert conditions(status)["Ready"] == ("Unknown", None, T0)
    SET.manage(status, now=T2).mark_true("B")
    assert conditions(status) == {"A": ("True", None, T1), "B": ("True", None, T2), "Ready": ("True", None, T2)}


def test_missing_dependent_counts_as_unknown() -> None:
    status = Status()
    SET.manage(status, now=T0).mark_true("A")
    assert conditions(status)["Ready"] == ("Unknown", None, T0)


def test_false_beats_unknown() -> None:
    status = Status()
    manager = SET.manage(status, now=T0)
    manager.initialize()
    manager.mark_false("A", "Broken", "a is broken")
    manager.mark_unknown("B", "Waiting", "b waits")
    ready = status.get_condition("Ready")
    assert ready is not None and (ready.status, ready.reason, ready.message) == ("False", "Broken", "a is broken")


def test_time_changes_only_with_status() -> None:
    status = Status()
    SET.manage(status, now=T0).mark_unknown("A", "One", "first")
    SET.manage(status, now=T1).mark_unknown("A", "Two", "second")
    a = status.get_condition("A")
    assert a is not None and (a.reason, a.last_transition_time) == ("Two", T0)
    SET.manage(status, now=T2).mark_true("A")
    assert status.get_condition("A").last_transition_time == T2  # type: ignore[union-attr]


def test_without_now_the_loop_stamps_changed_conditions() -> None:
    status = Status()
    SET.manage(status).mark_true("A")
    assert status.get_condition("A").last_transition_time is None  # type: ignore[union-attr]
    stamp_transition_times(status, datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    assert {c.last_transition_time for c in status.conditions or []} == {T0}


def test_non_dependent_condition_is_info_and_ignored() -> None:
    status = Status()
    manager = SET.manage(status, now=T0)
    manager.mark_true("A")
    manager.mark_true("B")
    manager.mark_false("Extra", "Nope", "does not matter")
    extra = status.get_condition("Extra")
    assert extra is not None and extra.severity == "Info"
    happy = manager.happy()
    assert happy is not None and happy.is_true()


def test_conditions_are_sorted_and_error_severity_is_omitted() -> None:
    status = Status()
    SET.manage(status, now=T0).mark_true("B")
    assert [c.type for c in status.conditions or []] == ["B", "Ready"]
    assert status.to_dict()["conditions"][0] == {"type": "B", "status": "True", "lastTransitionTime": T0}
    assert Condition(type="X").is_unknown()
