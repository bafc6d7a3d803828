"""Killed exports leave no staging folders for good; an existing --version is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mbrec_tf.errors import UserError
from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from pipelines import flags as common


def _model(data):
    return popularity.Popularity(data.item_popularity(), data.num_users)


def _ended_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_folders_of_killed_exports_are_removed(tmp_path, string_data):
    base = tmp_path / "export"
    prefix = export_lib._staging_prefix().rsplit("-", 2)[0]  # .export-tmp-<host>
    killed = base / f"{prefix}-{_ended_pid()}-abcd1234"
    running = base / f"{prefix}-{os.getpid()}-efgh5678"  # a live exporter's: kept
    old = base / ".export-tmp-k2j3h4g5"  # an older exporter's, untouched for two days
    for folder in (killed, running, old):
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    (base / "notes.txt").write_text("mine")
    path = export_lib.export_model(_model(string_data), string_data, str(base))
    assert sorted(os.listdir(base)) == sorted(["1", running.name, "notes.txt"])
    assert os.path.basename(path) == "1"


def test_an_existing_version_is_one_line_before_any_work(tmp_path, string_data, monkeypatch):
    base = str(tmp_path / "export")
    export_lib.export_model(_model(string_data), string_data, base, version=3)

    def no_save(*args, **kwargs):
        raise AssertionError("saved before checking the version")

    monkeypatch.setattr(export_lib.tf.saved_model, "save", no_save)
    with pytest.raises(UserError, match="export version 3 exists") as caught:
        export_lib.export_model(_model(string_data), string_data, base, version=3)
    assert isinstance(caught.value, FileExistsError)  # callers catching that keep working
    message = common.user_error_message(caught.value)
    assert message is not None and "--version" in message and "\n" not in message
