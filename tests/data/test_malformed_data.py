"""Malformed raw files: each stops with one line naming the file (and line), never silently.

Each case copies a builder's dummy data, breaks one thing, and builds: the error must be
one the pipelines report as a user error (one line, exit status 2), naming the file and,
where the problem is one line, its number. BOM and trailing blank lines are accepted.
"""

import pathlib
import shutil

import pytest
import tensorflow_datasets as tfds

import tfds_builders
from mbrec_tf.data import loading
from pipelines.flags import user_error_message

DUMMY = pathlib.Path(tfds_builders.__file__).parent


def _copy(tmp_path: pathlib.Path, dataset: str) -> pathlib.Path:
    folder = tmp_path / "raw"
    shutil.copytree(DUMMY / dataset / "dummy_data", folder)
    return folder


def _replace_line(path: pathlib.Path, number: int, text: str) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(b"\n".join(lines))


def _append(path: pathlib.Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n" + data)


def _break(case: str, folder: pathlib.Path) -> tuple[str, int | None]:
    """Breaks `folder` as `case` says; returns (file name, line number or None)."""
    if case == "beibei/missing_train":
        (folder / "buy.train.txt").unlink()
        return "buy.train.txt", None
    if case == "beibei/missing_test":
        (folder / "buy.test.txt").unlink()
        return "buy.test.txt", None
    if case == "beibei/bad_header":
        _replace_line(folder / "buy.train.txt", 1, "user\titem")
        return "buy.train.txt", 1
    if case == "beibei/letters_in_id":
        _replace_line(folder / "buy.train.txt", 3, "7\tabc")
        return "buy.train.txt", 3
    if case == "beibei/negative_id":
        _replace_line(folder / "cart.csv", 4, "-3\t5")
        return "cart.csv", 4
    if case == "beibei/missing_field":
        _replace_line(folder / "buy.test.txt", 2, "0")
        return "buy.test.txt", 2
    if case == "beibei/extra_field":
        _replace_line(folder / "buy.train.txt", 5, "1\t2\t3\t4")
        return "buy.train.txt", 5
    if case == "beibei/blank_line_inside":
        _replace_line(folder / "cart.csv", 6, "")
        return "cart.csv", 6
    if case == "beibei/not_utf8":
        _replace_line(folder / "buy.train.txt", 4, b"1\t\xff\xfe")
        return "buy.train.txt", 4
    if case == "beibei/empty_file":
        (folder / "buy.test.txt").write_bytes(b"")
        return "buy.test.txt", None
    if case == "beibei/directory_for_file":
        (folder / "buy.test.txt").unlink()
        (folder / "buy.test.txt").mkdir()
        return "buy.test.txt", None
    if case == "beibei/space_separated":
        _replace_line(folder / "cart.csv", 3, "1 2")
        return "cart.csv", 3
    if case == "taobao_ub4/letters":
        _replace_line(folder / "behavior_4" / "train.txt", 2, "1\tx\t5")
        return "train.txt", 2
    if case == "taobao_ub4/missing_behavior_file":
        (folder / "behavior_2" / "test.txt").unlink()
        return "test.txt", None
    if case == "retailrocket/letters":
        _replace_line(folder / "pv.txt", 2, "1 a 3")
        return "pv.txt", 2
    if case == "retailrocket/missing_test":
        (folder / "test.txt").unlink()
        return "test.txt", None
    if case == "movielens_100k/three_fields":
        _replace_line(folder / "u.data", 2, "3\t10\t3")
        return "u.data", 2
    if case == "movielens_100k/letters":
        _replace_line(folder / "u.data", 3, "1\tx\t2\t880000103")
        return "u.data", 3
    if case == "taobao_user_behavior/unknown_behavior":
        _replace_line(folder / "UserBehavior.csv", 2, "1,101,7,click,1511540210")
        return "UserBehavior.csv", 2
    raise AssertionError(case)


CASES = [
    "beibei/missing_train",
    "beibei/missing_test",
    "beibei/bad_header",
    "beibei/letters_in_id",
    "beibei/negative_id",
    "beibei/missing_field",
    "beibei/extra_field",
    "beibei/blank_line_inside",
    "beibei/not_utf8",
    "beibei/empty_file",
    "beibei/directory_for_file",
    "beibei/space_separated",
    "taobao_ub4/letters",
    "taobao_ub4/missing_behavior_file",
    "retailrocket/letters",
    "retailrocket/missing_test",
    "movielens_100k/three_fields",
    "movielens_100k/letters",
    "taobao_user_behavior/unknown_behavior",
]


@pytest.fixture(autouse=True)
def _quiet():
    tfds.disable_progress_bar()


@pytest.mark.parametrize("case", CASES)
def test_each_malformed_file_is_one_line_naming_the_file_and_line(tmp_path, case):
    dataset = case.split("/")[0]
    folder = _copy(tmp_path, dataset)
    name, line = _break(case, folder)
    with pytest.raises(Exception) as caught:
        loading.load_dataset(dataset, data_dir=str(tmp_path / "tfds"), manual_dir=str(folder))
    message = user_error_message(caught.value)
    assert message is not None, repr(caught.value)
    assert "\n" not in message
    assert name in message, message
    if line is not None:
        assert f"line {line}" in message, message


def test_a_bom_and_trailing_blank_lines_are_accepted(tmp_path):
    folder = _copy(tmp_path, "beibei")
    expected = loading.load_dataset("beibei", data_dir=str(tmp_path / "a"), manual_dir=str(folder))
    for name in ("buy.train.txt", "cart.csv", "buy.test.txt"):
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().rstrip(b"\n") + b"\n\n\r\n\n")
    data = loading.load_dataset("beibei", data_dir=str(tmp_path / "b"), manual_dir=str(folder))
    assert data.statistics() == expected.statistics()
    assert (data.target_train != expected.target_train).nnz == 0
