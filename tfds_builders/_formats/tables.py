"""Delimited tables: typed columns, validated and converted a chunk of lines at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

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

INT = "int"  # a non-negative decimal integer
SIGNED_INT = "signed_int"  # an optionally negative decimal integer (timestamps)
TEXT = "text"  # any text without the separator


@dataclasses.dataclass(frozen=True)
class Column:
    """One field of a delimited line.

    Attributes:
      name: key of the parsed column.
      kind: INT, SIGNED_INT or TEXT.
      choices: for TEXT columns, the accepted values (empty: any value); such a column is
        returned as int8 codes, the index of each value in `choices`.
    """

    name: str
    kind: str = INT
    choices: tuple[str, ...] = ()

    def problem(self, value: str) -> str | None:
        """Why `value` is not acceptable for this column, or None when it is."""
        if self.kind == INT and not (value.isascii() and value.isdigit()):
            return f"{self.name} to be a non-negative integer"
        if self.kind == SIGNED_INT:
            digits = value[1:] if value.startswith("-") else value
            if not (digits.isascii() and digits.isdigit()):
                return f"{self.name} to be an integer"
        if self.kind == TEXT and self.choices and value not in self.choices:
            return f"{self.name} to be one of {', '.join(self.choices)}"
        return None


@dataclasses.dataclass(frozen=True)
class Table:
    """Parsed columns of a delimited file; row r comes from line `first_line + r`."""

    path: str
    columns: Mapping[str, np.ndarray]
    first_line: int

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def line(self, row: int) -> int:
        """The file line number of row `row`."""
        return self.first_line + int(row)


def _describe(columns: Sequence[Column], sep: str) -> str:
    separator = {"\t": "<TAB>", ",": ",", " ": " "}.get(sep, sep)
    return separator.join(c.name for c in columns)


def _line_problem(text: str, columns: Sequence[Column], sep: str) -> str | None:
    """Why one data line is malformed (the reference rules of `read_table`), or None."""
    if not text:
        return f"a line `{_describe(columns, sep)}`, not an empty line"
    fields = text.split(sep)
    if len(fields) != len(columns):
        return (
            f"{len(columns)} {sep!r}-separated fields `{_describe(columns, sep)}`, "
            f"not {len(fields)} fields"
        )
    for column, value in zip(columns, fields, strict=True):
        problem = column.problem(value)
        if problem:
            return f"{problem}, not {value!r}"
    return None


def read_table(
    path: epath.PathLike,
    columns: Sequence[Column],
    *,
    sep: str,
    header: Sequence[str | None] | None = None,
    encoding: str = "utf-8",
    transform: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> Table:
    """Reads a delimited file with exactly `len(columns)` fields per line.

    Args:
      path: the file (a `.zip` holding one file is read transparently).
      columns: the fields of each data line, in order.
      sep: the field separator.
      header: if given, the file starts with a header line of these field names
        (None = any name at that position).
      encoding: text encoding of the file.
      transform: optional per-chunk function applied to the validated columns (e.g. to
        filter rows or drop columns of a huge log); its outputs are concatenated. Rows
        then no longer map to line numbers, so `Table.line` is meaningless.

    Returns:
      A Table of NumPy columns: int64 for INT / SIGNED_INT, str (object) for TEXT, int8
      codes for TEXT with choices.
    """
    path = require_file(path, f"a file of lines `{_describe(columns, sep)}`")
    parts: dict[str, list[np.ndarray]] = {c.name: [] for c in columns}
    first_data_line = 2 if header is not None else 1
    for _, chunk in iter_table(path, columns, sep=sep, header=header, encoding=encoding):
        if transform is not None:
            chunk = transform(chunk)
        for name, values in chunk.items():
            parts.setdefault(name, []).append(values)
    if transform is None:
        empty = {c.name: np.zeros(0, _dtype(c)) for c in columns}
        parts = {name: values or [empty[name]] for name, values in parts.items()}
    merged = {name: np.concatenate(values) for name, values in parts.items() if values}
    return Table(str(path), merged, first_data_line)


def iter_table(
    path: epath.PathLike,
    columns: Sequence[Column],
    *,
    sep: str,
    header: Sequence[str | None] | None = None,
    encoding: str = "utf-8",
    chunk_bytes: int | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """`read_table` as a stream: (first line number, validated columns) per chunk of lines.

    Memory is bounded by one chunk (`chunk_bytes` of text, default 128 MiB, and its
    columns: about ten times the text) whatever the size of the file; a `.zip` is
    decompressed as it is read. Errors are those of `read_table`, raised when the stream
    reaches the bad line.
    """
    path = require_file(path, f"a file of lines `{_describe(columns, sep)}`")
    header_seen = header is None
    for first, lines in line_chunks(path, encoding, chunk_bytes):
        if not header_seen:
            _check_header(path, lines, header, sep)
            header_seen = True
            lines = lines.slice(1)
            first = 2
        if len(lines) == 0:
            continue
        yield first, _parse_chunk(path, lines, first, columns, sep, encoding)
    if not header_seen:
        _check_header(path, pa.array([], pa.large_string()), header, sep)


def _dtype(column: Column) -> type:
    if column.kind != TEXT:
        return np.int64
    return np.int8 if column.choices else object


def _check_header(
    path: epath.Path, lines: pa.Array, header: Sequence[str | None], sep: str
) -> None:
    if not len(lines):
        raise DataFormatError(path, 1, "a header line", "an empty file")
    text = lines[0].as_py()
    names = text.split(sep)
    wanted = sep.join(h if h is not None else "*" for h in header)
    matches = len(names) == len(header) and all(
        h is None or h == n for h, n in zip(header, names, strict=True)
    )
    if not matches:
        raise DataFormatError(path, 1, f"the header line `{wanted}`", shorten(text))


def _parse_chunk(
    path: epath.Path,
    lines: pa.Array,
    first_line: int,
    columns: Sequence[Column],
    sep: str,
    encoding: str,
) -> dict[str, np.ndarray]:
    """Validates and converts one chunk of lines; explains the first bad line on failure."""
    width = len(columns)
    bad = pc.not_equal(pc.count_substring(lines, sep), width - 1)
    bad = pc.or_(bad, pc.equal(pc.utf8_length(lines), 0))
    _raise_at_first(path, bad, first_line, columns, sep, encoding)
    flat = pc.split_pattern(lines, sep).flatten()
    result: dict[str, np.ndarray] = {}
    for position, column in enumerate(columns):
        values = pc.take(flat, pa.array(np.arange(position, len(flat), width)))
        if column.kind in (INT, SIGNED_INT):
            digits = values
            if column.kind == SIGNED_INT:
                digits = pc.replace_substring_regex(values, pattern="^-", replacement="")
            ok = pc.and_(pc.string_is_ascii(digits), pc.utf8_is_digit(digits))
            _raise_at_first(path, pc.invert(ok), first_line, columns, sep, encoding)
            try:
                result[column.name] = pc.cast(values, pa.int64()).to_numpy()
            except pa.ArrowInvalid:  # digits but beyond int64
                raise DataFormatError(
                    path, None, f"{column.name} values that fit in a 64-bit integer"
                ) from None
        else:
            if column.choices:  # int8 codes, no Python string per line (100M-line logs)
                codes = pc.index_in(values, value_set=pa.array(column.choices, pa.large_string()))
                _raise_at_first(path, pc.is_null(codes), first_line, columns, sep, encoding)
                result[column.name] = codes.to_numpy(zero_copy_only=False).astype(np.int8)
            else:
                result[column.name] = values.to_numpy(zero_copy_only=False)
    return result


def _raise_at_first(
    path: epath.Path,
    bad: pa.Array,
    first_line: int,
    columns: Sequence[Column],
    sep: str,
    encoding: str,
) -> None:
    if not pc.any(bad).as_py():
        return
    row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
    number = first_line + row
    text = line_text(path, number, encoding)
    problem = _line_problem(text, columns, sep) or "a well-formed line"
    raise DataFormatError(path, number, problem, shorten(text))
