"""Raw files as lines: the format error, finding and opening files, chunks of lines."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from etils import epath

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


def open_bytes(path: epath.Path) -> io.BufferedIOBase:
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


def line_chunks(
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
    with open_bytes(path) as stream:
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


def line_text(path: epath.Path, number: int, encoding: str) -> str:
    """Line `number` (1-based) of `path`, without its line end."""
    with open_bytes(path) as stream:
        raw = next(itertools.islice(stream, number - 1, None), b"")
    return raw.decode(encoding, errors="replace").rstrip("\r\n")


def shorten(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
