"""Per-user adjacency lines `user item item ...` (the GHCF and MBGCN layouts)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from etils import epath

from tfds_builders._formats.lines import (
    DataFormatError,
    line_chunks,
    line_text,
    require_file,
    shorten,
)


@dataclasses.dataclass(frozen=True)
class Adjacency:
    """Pairs from `user item item ...` lines; `lines[k]` is the line of pair k."""

    path: str
    users: np.ndarray
    items: np.ndarray
    lines: np.ndarray


def read_adjacency(path: epath.PathLike, *, items_per_line: int | None = None) -> Adjacency:
    """Reads whitespace-separated `user item item ...` lines (GHCF / MBGCN layouts).

    Each line names one user and at least one item (exactly `items_per_line` items when
    given, e.g. 1 for a held-out test file). A user may appear on several lines.
    """
    path = require_file(path, "a file of lines `user item item ...`")
    expected = (
        "`user item` (exactly one item)"
        if items_per_line == 1
        else "`user item item ...` (a user id and at least one item id)"
    )
    users, items, numbers = [], [], []
    for first, lines in line_chunks(path, "utf-8"):
        normalised = pc.utf8_trim_whitespace(
            pc.replace_substring_regex(lines, pattern=r"\s+", replacement=" ")
        )
        counts = pc.add(pc.count_substring(normalised, " "), 1).to_numpy()
        empty = pc.equal(pc.utf8_length(normalised), 0).to_numpy(zero_copy_only=False)
        bad = empty | (counts < 2)
        if items_per_line is not None:
            bad |= counts != items_per_line + 1
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            text = line_text(path, first + row, "utf-8")
            raise DataFormatError(path, first + row, expected, shorten(text))
        tokens = pc.split_pattern(normalised, " ").flatten()
        ok = pc.and_(pc.string_is_ascii(tokens), pc.utf8_is_digit(tokens)).to_numpy(
            zero_copy_only=False
        )
        line_of_token = np.repeat(np.arange(len(counts)), counts)
        if not ok.all():
            token = int(np.flatnonzero(~ok)[0])
            number = first + int(line_of_token[token])
            raise DataFormatError(
                path,
                number,
                f"non-negative integer ids in {expected}, not {tokens[token].as_py()!r}",
                shorten(line_text(path, number, "utf-8")),
            )
        values = pc.cast(tokens, pa.int64()).to_numpy()
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        is_user = np.zeros(len(values), dtype=bool)
        is_user[starts] = True
        users.append(np.repeat(values[starts], counts - 1))
        items.append(values[~is_user])
        numbers.append(np.repeat(np.arange(first, first + len(counts)), counts - 1))
    if not users:
        raise DataFormatError(path, None, f"at least one line {expected}", "an empty file")
    return Adjacency(
        str(path), np.concatenate(users), np.concatenate(items), np.concatenate(numbers)
    )
