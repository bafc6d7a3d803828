"""A build always matches its raw files: another --manual_dir never gets the old build."""

import json
import pathlib
import shutil

import tensorflow_datasets as tfds

import tfds_builders
from mbrec_tf.data import loading

DUMMY = pathlib.Path(tfds_builders.__file__).parent / "beibei" / "dummy_data"


def test_the_same_dataset_from_two_folders_never_mixes_them(tmp_path):
    tfds.disable_progress_bar()
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(DUMMY, folder_a)
    shutil.copytree(DUMMY, folder_b)
    lines = (folder_b / "cart.csv").read_text().splitlines()
    (folder_b / "cart.csv").write_text("\n".join(lines[:-6]) + "\n")  # fewer cart records
    data_dir = str(tmp_path / "tfds")

    a = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(folder_a))
    b = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(folder_b))
    assert b.train["cart"].nnz < a.train["cart"].nnz
    assert b.raw_files["manual_dir"] == str(folder_b)
    assert b.raw_files["files"]["cart.csv"]["size"] < a.raw_files["files"]["cart.csv"]["size"]
    again = loading.load_dataset("beibei", data_dir=data_dir, manual_dir=str(folder_a))
    assert again.statistics() == a.statistics()
    # Without --manual_dir the build is used as it is, and says which files it came from.
    reused = loading.load_dataset("beibei", data_dir=data_dir)
    assert reused.raw_files["manual_dir"] == str(folder_a)
    record = json.loads(
        (
            pathlib.Path(loading.make_builder("beibei", data_dir=data_dir).data_dir)
            / loading.RAW_FILES_RECORD
        ).read_text()
    )
    assert set(record["files"]) == {"buy.train.txt", "buy.test.txt", "cart.csv"}
