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

from tfds_builders._formats.adjacency import Adjacency, read_adjacency
from tfds_builders._formats.ehcf import read_ehcf_pairs
from tfds_builders._formats.lines import DataFormatError, first_existing, require_file
from tfds_builders._formats.tables import (
    INT,
    SIGNED_INT,
    TEXT,
    Column,
    Table,
    iter_table,
    read_table,
)

__all__ = [
    "INT",
    "SIGNED_INT",
    "TEXT",
    "Adjacency",
    "Column",
    "DataFormatError",
    "Table",
    "first_existing",
    "iter_table",
    "read_adjacency",
    "read_ehcf_pairs",
    "read_table",
    "require_file",
]
