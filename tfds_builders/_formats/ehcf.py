"""The EHCF file layout: tab-separated `uid<TAB>sid[<TAB>label]` files with a header."""

from __future__ import annotations

from collections.abc import Sequence

from etils import epath

from tfds_builders._formats.lines import open_bytes, require_file
from tfds_builders._formats.tables import TEXT, Column, Table, read_table


def read_ehcf_pairs(path: epath.PathLike, labels: Sequence[str]) -> Table:
    """Reads an EHCF file (`buy.train.txt`, `cart.csv`, ...): a `uid<TAB>sid[<TAB>x]` header,
    then `user<TAB>item` lines, or `user<TAB>item<TAB>label` lines when the header has a
    third field; a label must be one of `labels` (the file's behavior, e.g. `cart`).

    Returns a Table with int64 columns `uid` and `sid`.
    """
    path = require_file(path, "an EHCF file with a `uid<TAB>sid` header")
    with open_bytes(path) as stream:
        first = stream.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    columns = [Column("uid"), Column("sid")]
    header: list[str | None] = ["uid", "sid"]
    if first.count("\t") == 2:
        columns.append(Column("behavior", TEXT, tuple(labels)))
        header.append(None)
    table = read_table(path, columns, sep="\t", header=header)
    return Table(table.path, {k: table[k] for k in ("uid", "sid")}, table.first_line)
