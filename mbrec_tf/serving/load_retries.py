"""The retry policy of a model version that failed to load, as TF Serving retries.

A failed version is tried again after a back-off that doubles with each failure (state
LOADING meanwhile), so that a folder picked up while it was still being copied loads once
the copy is complete. After `max_load_retries` failures with its files unchanged it is
given up (state END) until its files change: a folder fingerprint tells them apart.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

#: Retries of a version whose files do not change, after its first failed load (TF Serving's
#: --max_num_load_retries).
MAX_LOAD_RETRIES = 5
#: Seconds before the first retry of a failed load; each further retry waits twice as long,
#: up to MAX_RETRY_WAIT_SECONDS.
LOAD_RETRY_SECONDS = 1.0
MAX_RETRY_WAIT_SECONDS = 60.0

Fingerprint = tuple[tuple[str, int, int], ...]


def folder_fingerprint(path: str) -> Fingerprint | None:
    """(relative path, size, mtime) of every file under `path`; None if it cannot be read."""
    entries = []
    try:
        for root, _, files in os.walk(path, onerror=_raise):
            for name in files:
                full = os.path.join(root, name)
                stat = os.stat(full)
                entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    except OSError:
        return None
    return tuple(sorted(entries))


def _raise(error: OSError) -> None:
    """Makes `os.walk` fail on an unreadable folder instead of skipping it."""
    raise error


def retry_wait(failures: int, load_retry_seconds: float) -> float:
    """Seconds before the retry after `failures` failed loads: doubling, capped."""
    return min(load_retry_seconds * 2 ** (failures - 1), MAX_RETRY_WAIT_SECONDS)


@dataclasses.dataclass
class FailedLoad:
    """A version that failed to load: its error and when (whether) it is tried again."""

    message: str
    failures: int  # failed loads in all; the back-off doubles with each
    unchanged_failures: int  # failed loads since the version's files last changed
    fingerprint: Fingerprint | None  # its files at the last failure
    retry_at: float | None  # time.monotonic() of the next try; None: retries spent

    @property
    def retrying(self) -> bool:
        """Whether a retry is scheduled (the version reports LOADING, not END)."""
        return self.retry_at is not None

    @classmethod
    def after(
        cls,
        previous: FailedLoad | None,
        message: str,
        fingerprint: Fingerprint | None,
        now: float,
        max_load_retries: int = MAX_LOAD_RETRIES,
        load_retry_seconds: float = LOAD_RETRY_SECONDS,
    ) -> FailedLoad:
        """The failure that follows `previous` (None: the first), its retry scheduled from
        `now` unless the retries with unchanged files are spent."""
        failures = 1 if previous is None else previous.failures + 1
        unchanged = 1
        if previous is not None and previous.fingerprint == fingerprint:
            unchanged = previous.unchanged_failures + 1
        retry_at = None
        if unchanged <= max_load_retries:
            retry_at = now + retry_wait(failures, load_retry_seconds)
        return cls(message, failures, unchanged, fingerprint, retry_at)


def not_due(failed: Mapping[int, FailedLoad], base_path: str, now: float) -> set[int]:
    """Failed versions not to try on this poll: a retry not due yet, or retries spent with
    the version's files unchanged since."""
    waiting = set()
    for version, failure in failed.items():
        if failure.retrying:
            if now < failure.retry_at:
                waiting.add(version)
        elif folder_fingerprint(os.path.join(base_path, str(version))) == failure.fingerprint:
            waiting.add(version)
    return waiting
