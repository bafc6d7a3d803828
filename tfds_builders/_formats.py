"""Strict, fast parsers for the raw files of the multi-behavior datasets.

Every parser either returns all the records of a file or stops with a `DataFormatError`
that names the file, the line number and what was expected there: nothing is skipped.

Speed: files are read as bytes and split into lines with NumPy, and columns are validated
and converted with Arrow compute kernels (no Python work per line), so the 642k lines of
Beibei's cart file parse in a fraction of a second. When a vectorised check fails, the
offending line is re-read and explained by a plain-Python check that applies the same rules.

Rules shared by all formats: UTF-8 text (or the encoding a format names; a UTF-8 byte-order
mark is ignored), `\\n` or `\\r\\n` line ends, no blank lines except at the end of the file,
ids are non-negative decimal integers (ASCII digits only).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from etils import epath

INT = "int"  # a non-negative decimal integer
SIGNED_INT = "signed_int"  # an optionally negative decimal integer (timestamps)
TEXT = "text"  # any text without the separator

_CHUNK_BYTES = 1 << 27  # 128 MiB of raw text per vectorised chunk
_UTF8_BOM = b"\xef\xbb\xbf"


class DataFormatError(ValueError):
    """A raw file is missing or does not have the expected format.

    Attributes:
      path: the file.
      line: 1-based line number, or None when the problem is not one line.
      expected: what the parser expected.
      found: what it found instead (shortened), if anything.
    """

    def __init__(self, path: str | epath.Path, line: int | None, expected: str, found: str = ""):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = self.path if line is None else f"{self.path}, line {line}"
        message = f"{where}: expected {expected}"
        if found:
            message += f"; found {found}"
        super().__init__(message)


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


def require_file(path: epath.PathLike, what: str) -> epath.Path:
    """`path` as an epath.Path, or a DataFormatError saying which file is missing."""
    path = epath.Path(path)
    if path.is_dir():
        raise DataFormatError(path, None, f"{what} (a file; this is a directory)")
    if not path.is_file():
        raise DataFormatError(path, None, f"{what} (the file does not exist)")
    return path


def first_existing(folder: epath.PathLike, names: Sequence[str]) -> epath.Path | None:
    """The first of `folder/name` that exists, or None."""
    for name in names:
        candidate = epath.Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


# --- reading lines ------------------------------------------------------------------------------
def _open_bytes(path: epath.Path) -> io.BufferedIOBase:
    """A binary stream of `path`; a `.zip` yields its single member (e.g. pv.csv.zip)."""
    if path.suffix == ".zip":
        archive = zipfile.ZipFile(path.open("rb"))  # streamed: the archive is not read whole
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DataFormatError(
                path, None, "a zip archive holding exactly one file", str(members)
            )
        return archive.open(members[0])
    return path.open("rb")


def _line_chunks(
    path: epath.Path, encoding: str, chunk_bytes: int | None = None
) -> Iterator[tuple[int, pa.Array]]:
    """Yields (number of the first line, Arrow string array of lines without line ends).

    A UTF-8 byte-order mark at the start and blank lines at the end of the file are
    ignored (editors and spreadsheet exports write them); a blank line elsewhere is kept
    (and refused by the parsers).
    """
    chunk_bytes = chunk_bytes or _CHUNK_BYTES
    next_line = 1
    remainder = b""
    with _open_bytes(path) as stream:
        block = stream.read(chunk_bytes)
        if block.startswith(_UTF8_BOM) and encoding.lower().replace("-", "") == "utf8":
            block = block[len(_UTF8_BOM) :]
        while block:
            following = stream.read(chunk_bytes)
            data = remainder + block
            if following:
                # Keep a trailing run of line ends for the next chunk: it may end the file.
                cut = data.rstrip(b"\r\n").rfind(b"\n") + 1
                data, remainder = data[:cut], data[cut:]
            else:
                data = data.rstrip(b"\r\n")
                data, remainder = (data + b"\n" if data else b""), b""
            if data:
                lines = _split_lines(path, data, next_line, encoding)
                yield next_line, lines
                next_line += len(lines)
            block = following


def _split_lines(path: epath.Path, data: bytes, first_line: int, encoding: str) -> pa.Array:
    """Newline-terminated bytes -> Arrow string array, one element per line."""
    if encoding.lower().replace("-", "") not in ("utf8", "ascii"):
        data = data.decode(encoding).encode("utf-8")
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buffer == ord("\n")) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(
        len(ends), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)
    )
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        _explain_encoding(path, data, first_line, encoding)
        raise
    return pc.utf8_rtrim(lines, characters="\r\n")


def _explain_encoding(path: epath.Path, data: bytes, first_line: int, encoding: str) -> None:
    for number, raw in enumerate(data.split(b"\n"), start=first_line):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataFormatError(path, number, f"{encoding} text", repr(raw[:80])) from None


def _line_text(path: epath.Path, number: int, encoding: str) -> str:
    """Line `number` (1-based) of `path`, without its line end."""
    with _open_bytes(path) as stream:
        raw = next(itertools.islice(stream, number - 1, None), b"")
    return raw.decode(encoding, errors="replace").rstrip("\r\n")


def _shorten(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- delimited tables ---------------------------------------------------------------------------
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

    Memory is bounded by one chunk (`chunk_bytes` of text, default `_CHUNK_BYTES`, and its
    columns: about ten times the text) whatever the size of the file; a `.zip` is
    decompressed as it is read. Errors are those of `read_table`, raised when the stream
    reaches the bad line.
    """
    path = require_file(path, f"a file of lines `{_describe(columns, sep)}`")
    header_seen = header is None
    for first, lines in _line_chunks(path, encoding, chunk_bytes):
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
        raise DataFormatError(path, 1, f"the header line `{wanted}`", _shorten(text))


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
    text = _line_text(path, number, encoding)
    problem = _line_problem(text, columns, sep) or "a well-formed line"
    raise DataFormatError(path, number, problem, _shorten(text))


# --- per-user adjacency lines -------------------------------------------------------------------
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
    for first, lines in _line_chunks(path, "utf-8"):
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
            text = _line_text(path, first + row, "utf-8")
            raise DataFormatError(path, first + row, expected, _shorten(text))
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
                _shorten(_line_text(path, number, "utf-8")),
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


# --- the EHCF file layout -----------------------------------------------------------------------
def read_ehcf_pairs(path: epath.PathLike, labels: Sequence[str]) -> Table:
    """Reads an EHCF file (`buy.train.txt`, `cart.csv`, ...): a `uid<TAB>sid[<TAB>x]` header,
    then `user<TAB>item` lines, or `user<TAB>item<TAB>label` lines when the header has a
    third field; a label must be one of `labels` (the file's behavior, e.g. `cart`).

    Returns a Table with int64 columns `uid` and `sid`.
    """
    path = require_file(path, "an EHCF file with a `uid<TAB>sid` header")
    with _open_bytes(path) as stream:
        first = stream.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    columns = [Column("uid"), Column("sid")]
    header: list[str | None] = ["uid", "sid"]
    if first.count("\t") == 2:
        columns.append(Column("behavior", TEXT, tuple(labels)))
        header.append(None)
    table = read_table(path, columns, sep="\t", header=header)
    return Table(table.path, {k: table[k] for k in ("uid", "sid")}, table.first_line)
