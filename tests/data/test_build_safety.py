"""A build is replaced only by a complete new one; no network; unreadable raw files."""

import os
import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

import tfds_builders
from mbrec_tf.data import loading
from mbrec_tf.errors import UserError

DUMMY = pathlib.Path(tfds_builders.__file__).parent


def test_wrong_manual_dir_leaves_the_good_build(tmp_path):
    tfds.disable_progress_bar()
    data_dir = str(tmp_path / "tfds")
    good = tmp_path / "beibei"
    shutil.copytree(DUMMY / "beibei" / "dummy_data", good)
    before = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(good))
    wrong = DUMMY / "retailrocket" / "dummy_data"  # another dataset's files
    with pytest.raises(Exception, match="buy.train.txt"):
        loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(wrong))
    builder = loading.make_builder("beibei", data_dir=data_dir)
    assert os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))
    after = loading.load_dataset("beibei", data_dir=data_dir)  # the build, as it was
    assert after.statistics() == before.statistics()
    assert after.raw_files["manual_dir"] == str(good)
    leftovers = [n for n in os.listdir(data_dir) if n.startswith(".")]
    assert leftovers == []  # the failed staging build is gone


def test_a_rebuild_replaces_the_build_when_complete(tmp_path):
    tfds.disable_progress_bar()
    data_dir = str(tmp_path / "tfds")
    folder = tmp_path / "beibei"
    shutil.copytree(DUMMY / "beibei" / "dummy_data", folder)
    first = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(folder))
    lines = (folder / "cart.csv").read_text().splitlines()
    (folder / "cart.csv").write_text("\n".join(lines[:-6]) + "\n")
    second = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(folder))
    assert second.train["cart"].nnz < first.train["cart"].nnz
    assert loading.load_dataset("beibei", data_dir=data_dir).train["cart"].nnz == (
        second.train["cart"].nnz
    )
    assert [n for n in os.listdir(data_dir) if n.startswith(".")] == []


def test_movielens_with_a_missing_manual_dir_names_the_files_offline(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise AssertionError("tried to go online")

    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", offline)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", offline)
    with pytest.raises(UserError, match=r"nowhere does not exist; movielens_100k: .*u\.data"):
        loading.load_dataset(
            "movielens_100k", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "nowhere")
        )


def test_a_symlink_loop_among_the_raw_files_is_one_line(tmp_path):
    folder = tmp_path / "beibei"
    shutil.copytree(DUMMY / "beibei" / "dummy_data", folder)
    os.symlink(folder / "loop", folder / "loop")
    with pytest.raises(UserError, match=r"cannot read .*loop"):
        loading.load_dataset("beibei", data_dir=str(tmp_path / "tfds"), manual_dir=str(folder))
