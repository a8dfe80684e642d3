"""Retention decisions as pure functions: a listing, a fixed clock, free space; no files needed."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.record.retention import (PRESETS, RetentionPolicy, describe_disk_full, describe_full, oldest_deletable,
                                   plan_retention)
from edge.record.store import StoredSegment

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
MB = 1_000_000


def seg(hours_ago: float, size: int = MB, locked: bool = False, name: str | None = None) -> StoredSegment:
    start = NOW - dt.timedelta(hours=hours_ago)
    stem = name or "dashcam_" + start.strftime("%Y-%m-%d_%H-%M-%SZ")
    folder = Path("/rec/locked") if locked else Path("/rec")
    return StoredSegment(folder / f"{stem}.mp4", start, size, locked)


def names(segments: list[StoredSegment]) -> list[str]:
    return [s.name for s in segments]


def test_eu_72h_deletes_unlocked_footage_older_than_72_hours_only():
    old, old_locked, fresh = seg(73), seg(100, locked=True), seg(71)
    policy = RetentionPolicy.from_preset("eu-72h", 72, 0, 0)
    plan = plan_retention([old, old_locked, fresh], policy, NOW, free_bytes=10**12)
    assert names(plan.expired) == [old.name]
    assert plan.for_space == [] and not plan.full


def test_max_age_is_configurable():
    policy = RetentionPolicy.from_preset("eu-72h", 24, 0, 0)
    plan = plan_retention([seg(25), seg(23)], policy, NOW, free_bytes=10**12)
    assert len(plan.expired) == 1


def test_footage_stamped_in_the_future_is_never_expired():
    """The clock was set back (no RTC, GPS not yet locked): age is unknown, so nothing is deleted for it."""
    policy = RetentionPolicy.from_preset("eu-72h", 72, 0, 0)
    assert plan_retention([seg(-500)], policy, NOW, free_bytes=10**12).delete == []


def test_loop_only_and_keep_never_delete_for_age():
    for preset in ("loop-only", "keep"):
        policy = RetentionPolicy.from_preset(preset, 72, 0, 0)
        assert plan_retention([seg(10_000)], policy, NOW, free_bytes=10**12).delete == []


def test_byte_budget_deletes_oldest_unlocked_first_and_never_locked():
    segments = [seg(5), seg(4, locked=True), seg(3), seg(2), seg(1)]
    policy = RetentionPolicy.from_preset("loop-only", 72, max_bytes=4 * MB, min_free_bytes=0)
    plan = plan_retention(segments, policy, NOW, free_bytes=10**12, reserve_bytes=MB)
    # 5 MB held + 1 MB for the next segment must fit in 4 MB: the two oldest unlocked go.
    assert names(plan.for_space) == [segments[0].name, segments[2].name]
    assert plan.usage.used_bytes == 3 * MB and not plan.full


def test_min_free_space_floor_counts_what_deletions_give_back():
    segments = [seg(3), seg(2), seg(1)]
    policy = RetentionPolicy.from_preset("loop-only", 72, max_bytes=0, min_free_bytes=5 * MB)
    plan = plan_retention(segments, policy, NOW, free_bytes=4 * MB, reserve_bytes=MB)
    assert names(plan.for_space) == [segments[0].name, segments[1].name]
    assert plan.usage.free_bytes == 6 * MB and not plan.full


def test_a_budget_locked_footage_alone_exceeds_deletes_nothing_and_stops():
    """Deleting the unlocked (newest) segment would not meet the budget: it is kept for the user, not lost."""
    segments = [seg(3, locked=True), seg(2, locked=True), seg(1)]
    policy = RetentionPolicy.from_preset("eu-72h", 72, max_bytes=2 * MB, min_free_bytes=0)
    plan = plan_retention(segments, policy, NOW, free_bytes=10**12, reserve_bytes=MB)
    assert plan.delete == [] and plan.full
    assert plan.usage.used_bytes == 3 * MB
    message = describe_full(plan, policy, "/rec")
    assert "leaves no room even without the unlocked segments" in message and "recording stopped" in message


def test_only_locked_left_means_full_and_nothing_locked_is_chosen():
    segments = [seg(3, locked=True), seg(2, locked=True)]
    policy = RetentionPolicy.from_preset("eu-72h", 72, max_bytes=2 * MB, min_free_bytes=0)
    plan = plan_retention(segments, policy, NOW, free_bytes=10**12, reserve_bytes=MB)
    assert plan.delete == [] and plan.full
    message = describe_full(plan, policy, "/rec")
    assert "only locked segments are left" in message and "recording stopped" in message


def test_a_full_disk_frees_the_oldest_unlocked_segment_never_a_locked_one():
    segments = [seg(5, locked=True), seg(3), seg(4), seg(1)]
    assert oldest_deletable(segments, RetentionPolicy.from_preset("loop-only", 72, 0, 0)) == segments[2]
    assert oldest_deletable(segments[:1], RetentionPolicy.from_preset("loop-only", 72, 0, 0)) is None
    assert oldest_deletable(segments, RetentionPolicy.from_preset("keep", 72, 0, 0)) is None
    message = describe_disk_full(RetentionPolicy(), 5 * MB, "/rec")
    assert message.startswith("recording stopped: the disk holding /rec is full") and "5.0 MB" in message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 5), st.booleans()), max_size=12),
       st.sampled_from(PRESETS), st.integers(0, 30), st.integers(0, 20), st.integers(0, 4))
def test_retention_never_deletes_locked_footage_and_deletes_for_space_only_when_it_helps(
        specs, preset, max_mb, free_mb, reserve_mb):
    segments = [seg(hours, size * MB, locked, name=f"dashcam_{i:02d}") for i, (hours, size, locked) in enumerate(specs)]
    policy = RetentionPolicy.from_preset(preset, 72, max_bytes=max_mb * MB, min_free_bytes=2 * MB)
    plan = plan_retention(segments, policy, NOW, free_bytes=free_mb * MB, reserve_bytes=reserve_mb * MB)
    assert not any(s.locked for s in plan.delete)
    if plan.full:
        assert plan.for_space == []  # never lose footage for a budget that still is not met
    kept = sorted((s for s in segments if not s.locked and s not in plan.delete), key=lambda s: (s.start_utc, s.name))
    for deleted in plan.for_space:  # oldest first: everything deleted for space is older than all that stays
        assert all((deleted.start_utc, deleted.name) <= (k.start_utc, k.name) for k in kept)


def test_keep_stops_instead_of_deleting():
    policy = RetentionPolicy.from_preset("keep", 72, max_bytes=2 * MB, min_free_bytes=0)
    plan = plan_retention([seg(3), seg(2)], policy, NOW, free_bytes=10**12, reserve_bytes=MB)
    assert plan.delete == [] and plan.full
    assert "keep" in describe_full(plan, policy, "/rec")


def test_expired_footage_counts_towards_the_budget_it_frees():
    policy = RetentionPolicy.from_preset("eu-72h", 72, max_bytes=2 * MB, min_free_bytes=0)
    plan = plan_retention([seg(80), seg(2), seg(1)], policy, NOW, free_bytes=10**12, reserve_bytes=0)
    assert len(plan.expired) == 1 and plan.for_space == [] and not plan.full


def test_no_limits_means_nothing_happens():
    plan = plan_retention([seg(1000), seg(1)], RetentionPolicy(), NOW, free_bytes=0, reserve_bytes=10**9)
    assert plan.delete == [] and not plan.full


def test_every_config_preset_builds_a_policy_and_others_are_refused():
    assert PRESETS == ("eu-72h", "loop-only", "keep")
    policies = [RetentionPolicy.from_preset(preset, 72, 0, 0) for preset in PRESETS]
    assert [p.delete_for_space for p in policies] == [True, True, False]
    with pytest.raises(ValueError):
        RetentionPolicy.from_preset("forever", 72, 0, 0)


def test_footage_from_an_unset_clock_is_not_expired_but_still_rotates_for_space():
    """A Pi without RTC records as 1970 until GPS sets the clock: its age is unknown, not 56 years."""
    epoch = StoredSegment(Path("/rec/dashcam_1970-01-01_00-00-10Z.mp4"),
                          dt.datetime(1970, 1, 1, 0, 0, 10, tzinfo=dt.timezone.utc), MB, False)
    policy = RetentionPolicy.from_preset("eu-72h", 72, max_bytes=2 * MB, min_free_bytes=0)
    assert plan_retention([epoch, seg(1)], policy, NOW, free_bytes=10**12).expired == []
    plan = plan_retention([epoch, seg(1)], policy, NOW, free_bytes=10**12, reserve_bytes=MB)
    assert names(plan.for_space) == [epoch.name]


def test_a_disk_filled_by_other_files_is_explained_as_such():
    policy = RetentionPolicy.from_preset("eu-72h", 72, max_bytes=0, min_free_bytes=500 * MB)
    plan = plan_retention([], policy, NOW, free_bytes=100 * MB)
    assert plan.full
    message = describe_full(plan, policy, "/rec")
    assert "other files fill the disk" in message and "min_free_bytes is 500.0 MB" in message
    assert "max_bytes" not in message  # only the limit that was hit is named
