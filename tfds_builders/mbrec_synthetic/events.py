"""What both synthetic generators share: size and seed, the time scale, events in time order."""

from __future__ import annotations

import dataclasses

import numpy as np

DAY = 86_400  # seconds
SPAN = 30 * DAY  # first-stage events fall uniformly in this window


@dataclasses.dataclass(frozen=True)
class GeneratedSize:
    """Users, items and seed of a generated log; the generators' specs add their knobs."""

    num_users: int
    num_items: int
    seed: int = 0

    def require_at_least(self, *pairs: tuple[str, str]) -> None:
        """Raises ValueError for the first (larger, smaller) field pair out of order."""
        for larger, smaller in pairs:
            if getattr(self, larger) < getattr(self, smaller):
                raise ValueError(f"{larger} must be >= {smaller}")


@dataclasses.dataclass(frozen=True)
class RawEvents:
    """Raw events in time order: 0-based int user and item ids, behavior codes, seconds."""

    users: np.ndarray
    items: np.ndarray
    behaviors: np.ndarray
    timestamps: np.ndarray


def start_times(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` first-stage times, uniform over the generated window."""
    return rng.integers(0, SPAN, size=count)


def in_time_order(
    users: np.ndarray, items: np.ndarray, behaviors: np.ndarray, timestamps: np.ndarray
) -> dict[str, np.ndarray]:
    """The events as `RawEvents` fields, sorted by time then behavior (as a log is written)."""
    order = np.lexsort((behaviors, timestamps))
    return {
        "users": users[order],
        "items": items[order],
        "behaviors": behaviors[order],
        "timestamps": timestamps[order],
    }
