"""The one JSON writer of the library: results, histories, configurations and records are
replaced atomically, so a reader or a crash never sees half a file."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf


def write_json(path: str | os.PathLike, payload: Any, *, sort_keys: bool = True) -> None:
    """Writes `payload` as indented JSON to `path` through a temporary file and a rename.

    Values JSON cannot hold are written as their `str()`. The folder is created if needed;
    if writing fails, the previous file (if any) stays as it was and no temporary is left.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        tf.io.gfile.makedirs(folder)
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, default=str) + "\n"
    temporary = f"{path}.tmp"  # what run directories recognise as a leftover of theirs
    try:
        with tf.io.gfile.GFile(temporary, "w") as file:
            file.write(text)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
