"""Which segments to delete, decided by pure functions over a listing, a clock reading and free space.

Two rules, applied to unlocked segments only, oldest first:
- age: with the `eu-72h` preset, footage older than `max_age_hours` goes (European
  data-protection guidance for dashcams: keep ordinary footage for a short time only);
- space: with `eu-72h` and `loop-only`, the oldest go until the folder fits `max_bytes` and
  the filesystem keeps `min_free_bytes`, with room left for the next segment (loop recording).
Locked segments are never chosen. When the budget cannot be met even by deleting every
unlocked segment (locked footage alone exceeds it, or the `keep` preset), the plan deletes
nothing for space, since that would lose the newest footage for nothing, and says so: the
recorder stops rather than delete evidence.

The budget is an estimate; the disk can still fill first (other files, a slow card's
reserved blocks). Then `oldest_deletable` names what to free so the write can go on
(see `edge.record.atomic.RoomMaker`).
"""
from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass, field
from collections.abc import Sequence

from edge.config import RetentionPreset
from edge.errors import StorageError
from edge.record.store import StoredSegment

PRESETS: tuple[str, ...] = typing.get_args(RetentionPreset)  # the config's choices
# Names stamped before this come from a clock that was not set yet (a Pi without RTC boots in 1970):
# their age is unknown, so they are never deleted for age, only rotated out for space.
PLAUSIBLE_AFTER_UTC = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


class StorageFullError(StorageError):
    """The disk budget is reached and nothing may be deleted: recording stops."""


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_s: float | None = None  # None: footage is not deleted for its age
    max_bytes: int = 0  # 0: no byte budget for the folder
    min_free_bytes: int = 0  # 0: no free-space floor
    delete_for_space: bool = True  # False (`keep`): stop instead of looping

    @classmethod
    def from_preset(cls, preset: str, max_age_hours: float, max_bytes: int, min_free_bytes: int) -> RetentionPolicy:
        if preset not in PRESETS:
            raise ValueError(f"unknown retention preset {preset!r}")
        return cls(max_age_s=max_age_hours * 3600 if preset == "eu-72h" else None, max_bytes=max_bytes,
                   min_free_bytes=min_free_bytes, delete_for_space=preset != "keep")


@dataclass(frozen=True)
class Usage:
    """What the folder holds and what the filesystem has left, after a plan is carried out."""

    used_bytes: int
    free_bytes: int
    locked_bytes: int
    reserve_bytes: int = 0  # room kept for the next segment


@dataclass(frozen=True)
class RetentionPlan:
    expired: list[StoredSegment] = field(default_factory=list)
    for_space: list[StoredSegment] = field(default_factory=list)
    usage: Usage = Usage(0, 0, 0, 0)
    full: bool = False  # the budget is not met even after the deletions

    @property
    def delete(self) -> list[StoredSegment]:
        return self.expired + self.for_space


def plan_retention(segments: Sequence[StoredSegment], policy: RetentionPolicy, now_utc: dt.datetime,
                   free_bytes: int, reserve_bytes: int = 0) -> RetentionPlan:
    """Segments to delete now. `reserve_bytes` is room kept for the segment about to be written."""
    unlocked = sorted((s for s in segments if not s.locked), key=lambda s: (s.start_utc, s.name))
    expired = [s for s in unlocked if _is_expired(s, policy, now_utc)]
    kept = [s for s in unlocked if s not in expired]
    used = sum(s.size_bytes for s in segments) - sum(s.size_bytes for s in expired)
    free = free_bytes + sum(s.size_bytes for s in expired)
    for_space = []
    while policy.delete_for_space and kept and _over_budget(policy, used, free, reserve_bytes):
        oldest = kept.pop(0)
        for_space.append(oldest)
        used -= oldest.size_bytes
        free += oldest.size_bytes
    locked_bytes = sum(s.size_bytes for s in segments if s.locked)
    full = _over_budget(policy, used, free, reserve_bytes)
    if full and for_space:  # deleting them all would not be enough: keep them for the user to export
        used += sum(s.size_bytes for s in for_space)
        free -= sum(s.size_bytes for s in for_space)
        for_space = []
    return RetentionPlan(expired, for_space, Usage(used, free, locked_bytes, reserve_bytes), full=full)


def oldest_deletable(segments: Sequence[StoredSegment], policy: RetentionPolicy) -> StoredSegment | None:
    """The segment to delete when a write fails for lack of space: the oldest unlocked one, if the policy
    deletes for space. `segments` are finished ones, so the segment being written is never among them."""
    if not policy.delete_for_space:
        return None
    unlocked = [s for s in segments if not s.locked]
    return min(unlocked, key=lambda s: (s.start_utc, s.name), default=None)


def _is_expired(segment: StoredSegment, policy: RetentionPolicy, now_utc: dt.datetime) -> bool:
    if policy.max_age_s is None or segment.start_utc < PLAUSIBLE_AFTER_UTC:
        return False
    # A segment stamped in the future (the clock was set back) counts as new: never delete on a bad clock.
    return (now_utc - segment.start_utc).total_seconds() > policy.max_age_s


def _over_budget(policy: RetentionPolicy, used: int, free: int, reserve: int) -> bool:
    if policy.max_bytes and used + reserve > policy.max_bytes:
        return True
    return bool(policy.min_free_bytes) and free - reserve < policy.min_free_bytes


def describe_full(plan: RetentionPlan, policy: RetentionPolicy, folder: str) -> str:
    """The one line a user sees when recording stops for lack of space."""
    usage = plan.usage
    why = _why_nothing_goes(policy, usage.locked_bytes, usage.used_bytes > usage.locked_bytes, folder)
    limits, advice = [], "export and remove footage you no longer need"
    if policy.max_bytes and usage.used_bytes + usage.reserve_bytes > policy.max_bytes:
        limits.append(f"the folder holds {_size(usage.used_bytes)}, max_bytes is {_size(policy.max_bytes)}")
        advice += ", or raise record.max_bytes"
    if policy.min_free_bytes and usage.free_bytes - usage.reserve_bytes < policy.min_free_bytes:
        limits.append(f"{_size(usage.free_bytes)} free, min_free_bytes is {_size(policy.min_free_bytes)}")
        advice += ", or free space on the disk"
    return (f"recording stopped: the disk budget is reached ({'; '.join(limits)}; next segment "
            f"~{_size(usage.reserve_bytes)}) and {why}; {advice}")


def describe_disk_full(policy: RetentionPolicy, locked_bytes: int, folder: str) -> str:
    """The one line a user sees when a write failed for space and nothing more may be deleted."""
    why = _why_nothing_goes(policy, locked_bytes, False, folder)
    return (f"recording stopped: the disk holding {folder} is full and {why}; "
            "export and remove footage you no longer need, or free space on the disk")


def _why_nothing_goes(policy: RetentionPolicy, locked_bytes: int, unlocked_left: bool, folder: str) -> str:
    if not policy.delete_for_space:
        return "retention is 'keep', so nothing is deleted automatically"
    if unlocked_left:
        return (f"locked footage ({_size(locked_bytes)} in {folder}/locked) leaves no room even without "
                "the unlocked segments, which are kept")
    if locked_bytes:
        return f"only locked segments are left ({_size(locked_bytes)} in {folder}/locked)"
    return "no footage is left to delete: other files fill the disk"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
