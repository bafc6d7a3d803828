"""Raw-file parsers: correct parsing, and errors that name the file, line and expectation."""

import types
import zipfile

import numpy as np
import pytest
from etils import epath

import tfds_builders
from tfds_builders import _formats as formats
from tfds_builders._formats import DataFormatError
from tfds_builders.movielens_100k import movielens_100k
from tfds_builders.taobao_user_behavior import taobao_user_behavior


def write(path, text: str, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def prepare(builder_cls, folder, config=None):
    """Runs a builder's raw-file reading and preprocessing (no TFDS writing)."""
    builder = builder_cls(config=builder_cls.config_from_name(config), data_dir=str(folder / "d"))
    return builder._prepare(types.SimpleNamespace(manual_dir=epath.Path(folder)))


def ehcf_folder(tmp_path, train="uid\tsid\n0\t5\n0\t6\n1\t7\n", test="uid\tsid\n0\t8\n1\t9\n"):
    write(tmp_path / "buy.train.txt", train)
    write(tmp_path / "buy.test.txt", test)
    return tmp_path


def assert_error(error: DataFormatError, path, line, *fragments):
    assert error.path == str(path)
    assert error.line == line
    for fragment in fragments:
        assert fragment in str(error), str(error)


# --- successful parsing ---------------------------------------------------------------------
def test_read_table_parses_ints_text_and_crlf(tmp_path):
    path = write(tmp_path / "t.csv", "1,a,-5\r\n22,b,7\r\n")
    columns = [
        formats.Column("id"),
        formats.Column("name", formats.TEXT),
        formats.Column("time", formats.SIGNED_INT),
    ]
    table = formats.read_table(path, columns, sep=",")
    np.testing.assert_array_equal(table["id"], [1, 22])
    assert table["name"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(table["time"], [-5, 7])
    assert table.line(1) == 2


def test_read_table_without_trailing_newline_and_small_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(formats.lines, "_CHUNK_BYTES", 7)  # forces lines across chunk borders
    path = write(
        tmp_path / "t.tsv", "h1\th2\n" + "".join(f"{i}\t{i * 10}\n" for i in range(20)) + "5\t6"
    )
    table = formats.read_table(
        path, [formats.Column("a"), formats.Column("b")], sep="\t", header=["h1", "h2"]
    )
    assert len(table) == 21
    assert table["b"][-1] == 6 and table["b"][3] == 30
    assert table.line(0) == 2


def test_ehcf_label_column_and_zip(tmp_path):
    inner = "uid\tsid\t3\n0\t1\tpv\n2\t3\tpv\n"
    with zipfile.ZipFile(tmp_path / "pv.csv.zip", "w") as archive:
        archive.writestr("pv.csv", inner)
    table = formats.read_ehcf_pairs(tmp_path / "pv.csv.zip", ["pv"])
    np.testing.assert_array_equal(table["uid"], [0, 2])
    np.testing.assert_array_equal(table["sid"], [1, 3])


def test_read_adjacency_pairs_and_lines(tmp_path):
    path = write(tmp_path / "train.txt", "3 10 11\n1\t12\n3 13\n")
    adjacency = formats.read_adjacency(path)
    np.testing.assert_array_equal(adjacency.users, [3, 3, 1, 3])
    np.testing.assert_array_equal(adjacency.items, [10, 11, 12, 13])
    np.testing.assert_array_equal(adjacency.lines, [1, 1, 2, 3])


# --- errors ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    write(tmp_path / "buy.train.txt", "uid\tsid\n0\t1\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, tmp_path)
    assert_error(error.value, tmp_path / "buy.test.txt", None, "does not exist")


def test_malformed_line_wrong_field_count(tmp_path):
    folder = ehcf_folder(tmp_path, train="uid\tsid\n0\t5\n0\t6\t7\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "buy.train.txt", 3, "2 '\\t'-separated fields", "not 3")


def test_blank_line(tmp_path):
    folder = ehcf_folder(tmp_path, test="uid\tsid\n0\t8\n\n1\t9\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "buy.test.txt", 3, "not an empty line")


def test_non_integer_id(tmp_path):
    folder = ehcf_folder(tmp_path, train="uid\tsid\n0\t5\n0\t6\nx1\t7\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(
        error.value,
        folder / "buy.train.txt",
        4,
        "uid to be a non-negative integer, not 'x1'",
        "'x1'",
    )


def test_non_integer_id_in_adjacency(tmp_path):
    write(tmp_path / "train.txt", "0 1 2\n1 3 4.5\n")
    write(tmp_path / "test.txt", "0 9\n1 8\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Retailrocket, tmp_path)
    assert_error(error.value, tmp_path / "train.txt", 2, "non-negative integer ids", "'4.5'")


def test_adjacency_line_without_items(tmp_path):
    path = write(tmp_path / "train.txt", "0 1\n7\n")
    with pytest.raises(DataFormatError) as error:
        formats.read_adjacency(path)
    assert_error(error.value, path, 2, "at least one item")


def test_test_file_needs_exactly_one_item(tmp_path):
    write(tmp_path / "train.txt", "0 1 2\n1 3\n")
    write(tmp_path / "test.txt", "0 9\n1 8 7\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Retailrocket, tmp_path)
    assert_error(error.value, tmp_path / "test.txt", 2, "exactly one item")


def test_wrong_header(tmp_path):
    folder = ehcf_folder(tmp_path, train="user\titem\n0\t5\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(
        error.value, folder / "buy.train.txt", 1, "header line `uid\tsid`", "'user\\titem'"
    )


def test_unknown_behavior_name_in_event_log(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", "1,2,3,pv,100\n1,2,3,buy,101\n1,4,3,like,102\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.TaobaoUserBehavior, tmp_path)
    assert_error(error.value, path, 3, "behavior to be one of pv, fav, cart, buy, not 'like'")


def test_unknown_behavior_label_in_ehcf_file(tmp_path):
    folder = ehcf_folder(tmp_path)
    write(folder / "cart.csv", "uid\tsid\t3\n0\t5\tcart\n1\t2\tbuy\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "cart.csv", 3, "behavior to be one of cart, not 'buy'")


def test_empty_target_behavior(tmp_path):
    folder = ehcf_folder(tmp_path, train="uid\tsid\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "buy.train.txt", None, "at least one training record")


def test_empty_target_in_event_log(tmp_path):
    write(tmp_path / "UserBehavior.csv", "1,2,3,pv,100\n1,3,3,cart,101\n")
    with pytest.raises(DataFormatError, match="at least one 'buy' event"):
        prepare(tfds_builders.TaobaoUserBehavior, tmp_path)


def test_test_user_absent_from_training(tmp_path):
    folder = ehcf_folder(tmp_path, test="uid\tsid\n0\t8\n1\t9\n4\t2\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "buy.test.txt", 4, "user 4 has none", "buy.train.txt")


def test_two_test_items_for_one_user(tmp_path):
    folder = ehcf_folder(tmp_path, test="uid\tsid\n0\t8\n1\t9\n0\t3\n")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(
        error.value, folder / "buy.test.txt", 4, "exactly one held-out item per user", "on line 2"
    )


def test_empty_file_without_header(tmp_path):
    folder = ehcf_folder(tmp_path, train="")
    with pytest.raises(DataFormatError) as error:
        prepare(tfds_builders.Beibei, folder)
    assert_error(error.value, folder / "buy.train.txt", 1, "a header line", "an empty file")


def test_invalid_utf8(tmp_path):
    path = write(tmp_path / "UserBehavior.csv", "")
    path.write_bytes(b"1,2,3,pv,100\n1,2,3,b\xffuy,101\n")
    with pytest.raises(DataFormatError) as error:
        taobao_user_behavior.read_user_behavior(path)
    assert_error(error.value, path, 2, "utf-8 text")


def test_movielens_item_file_is_latin1_and_strict(tmp_path):
    genres = "|".join("0" * 19)
    write(tmp_path / "u.data", "1\t1\t5\t100\n1\t2\t4\t101\n")
    write(tmp_path / "u.item", f"1|Café (1995)|x||url|{genres}\n2|B|x||url|{genres}\n", "latin-1")
    log, titles = movielens_100k.read_movielens(epath.Path(tmp_path))
    assert titles == {1: "Café (1995)", 2: "B"}
    assert len(log) == 2
    write(tmp_path / "u.item", f"1|A|x||url|{genres}\n2|B|x|url\n", "latin-1")
    with pytest.raises(DataFormatError) as error:
        movielens_100k.read_movielens(epath.Path(tmp_path))
    assert_error(error.value, tmp_path / "u.item", 2, "24 '|'-separated fields")


def test_user_behavior_stream_is_bounded_and_complete(tmp_path):
    from pipelines import parse_benchmark
    from tfds_builders.taobao_user_behavior import taobao_user_behavior as tub

    path = str(tmp_path / "UserBehavior.csv")
    parse_benchmark.write_log(path, 2500, seed=1)
    chunks = list(tub.stream_user_behavior(path, chunk_bytes=4096))  # lines across borders
    assert len(chunks) > 10
    assert max(len(c["user"]) for c in chunks) < 200  # one chunk of text at a time
    lines = [line.split(",") for line in open(path).read().splitlines()]
    assert sum(len(c["user"]) for c in chunks) == len(lines) == 2500
    assert [int(c["first_line"]) for c in chunks][:2] == [1, 1 + len(chunks[0]["user"])]
    users = np.concatenate([c["user"] for c in chunks])
    behaviors = np.concatenate([c["behavior"] for c in chunks])
    np.testing.assert_array_equal(users, [int(f[0]) for f in lines])
    names = ["pv", "fav", "cart", "buy"]
    np.testing.assert_array_equal(behaviors, [names.index(f[3]) for f in lines])

    zipped = tmp_path / "zipped" / "UserBehavior.csv.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, "UserBehavior.csv")
    again = np.concatenate([c["timestamp"] for c in tub.stream_user_behavior(zipped)])
    np.testing.assert_array_equal(again, [int(f[4]) for f in lines])


def test_user_behavior_stream_names_a_bad_line(tmp_path):
    from tfds_builders.taobao_user_behavior import taobao_user_behavior as tub

    good = "".join(f"{u},{u + 1},7,pv,1511544070\n" for u in range(40))
    path = write(tmp_path / "UserBehavior.csv", good + "1,2,3,click,1511544070\n")
    stream = tub.stream_user_behavior(path, chunk_bytes=64)
    next(stream)  # the first chunks come before the bad line is reached
    with pytest.raises(formats.DataFormatError, match="line 41: expected behavior to be one of"):
        list(stream)
