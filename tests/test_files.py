"""The atomic JSON writer: whole files or the previous file, never half of one."""

import json
import os

import numpy as np
import pytest

from mbrec_tf import files


def test_writes_sorted_indented_json_and_creates_the_folder(tmp_path):
    path = tmp_path / "new" / "results.json"
    files.write_json(path, {"b": 1, "a": [1.5, None], "c": np.float32(0.25)})
    text = path.read_text()
    assert text.endswith("\n")
    assert list(json.loads(text)) == ["a", "b", "c"]
    assert json.loads(text)["c"] == "0.25"  # not JSON: its str()
    assert os.listdir(path.parent) == ["results.json"]


def test_key_order_kept_when_asked(tmp_path):
    path = tmp_path / "best.json"
    files.write_json(path, {"z": 1, "a": 2}, sort_keys=False)
    assert list(json.loads(path.read_text())) == ["z", "a"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    class Unwritable:
        def __str__(self):
            raise RuntimeError("cannot be written")

    path = tmp_path / "history.json"
    files.write_json(path, {"epochs": [1, 2]})
    with pytest.raises(RuntimeError, match="cannot be written"):
        files.write_json(path, {"epochs": [1, 2, 3], "bad": Unwritable()})
    assert json.loads(path.read_text()) == {"epochs": [1, 2]}
    assert os.listdir(tmp_path) == ["history.json"]


def test_a_failed_rename_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    files.write_json(path, {"epoch": 1})

    def broken_rename(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(files.tf.io.gfile, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        files.write_json(path, {"epoch": 2})
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["results.json"]
