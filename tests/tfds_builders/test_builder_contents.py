"""What each builder makes of its dummy_data (raw reading + preprocessing, no TFDS writing)."""

import types

import numpy as np
import pytest
from etils import epath

import tfds_builders
from tfds_builders import _preprocessing as prep

DUMMY = epath.Path(tfds_builders.__file__).parent


def prepare(builder_cls, config=None, folder=None):
    builder = builder_cls(config=builder_cls.config_from_name(config), data_dir="/nonexistent")
    manual = folder or DUMMY / builder_cls.name / "dummy_data"
    return builder._prepare(types.SimpleNamespace(manual_dir=epath.Path(manual)))


def raw_pairs(prepared, behavior):
    users, items = prepared.train[behavior]
    return set(
        zip(prepared.user_ids[users].tolist(), prepared.item_ids[items].tolist(), strict=True)
    )


def read_tsv_pairs(path):
    lines = epath.Path(path).read_text().splitlines()[1:]
    return {tuple(int(x) for x in line.split("\t")[:2]) for line in lines}


def test_taobao_user_behavior_dummy_report_is_hand_computed():
    prepared = prepare(tfds_builders.TaobaoUserBehavior)
    report = prepared.report
    # 12 users x (7 pv incl. one repeat, 3 cart, 1 fav, 6 buy) + user 13 (2 buys) +
    # user 1's item 999 (buy, pv) + a repeated purchase + a late fav.
    assert {k: v for k, v in report.items() if k.startswith("records/")} == {
        "records/pv": 85,
        "records/fav": 13,
        "records/cart": 36,
        "records/buy": 76,
    }
    assert report["duplicates_merged/pv"] == 12 and report["duplicates_merged/buy"] == 1
    assert report["kcore/users_removed"] == 1 and report["kcore/items_removed"] == 1
    assert report["kcore/events_removed/buy"] == 3 and report["kcore/events_removed/pv"] == 1
    assert report["leakage_removed/fav"] == 1 and report["leakage_removed/pv"] == 0
    assert prepared.statistics() == {
        "users": 12,
        "items": 10,
        "train/pv": 72,
        "train/fav": 12,
        "train/cart": 36,
        "train/buy": 48,
        "valid/buy": 12,
        "test/buy": 12,
    }
    # User u bought items 100 + (u + k) % 10 for k = 0..5 in that order.
    user = {raw: index for index, raw in enumerate(prepared.user_ids.tolist())}
    for raw_user in (1, 7, 12):
        row = user[raw_user]
        assert prepared.item_ids[prepared.test_items[row]] == 100 + (raw_user + 5) % 10
        assert prepared.item_ids[prepared.valid_items[row]] == 100 + (raw_user + 4) % 10


def test_taobao_user_behavior_sampling_is_seeded():
    path = DUMMY / "taobao_user_behavior" / "dummy_data" / "UserBehavior.csv"
    from tfds_builders.taobao_user_behavior import taobao_user_behavior as tub

    log_a, report_a = tub.read_user_behavior(path, sample_users=5, seed=1)
    log_b, _ = tub.read_user_behavior(path, sample_users=5, seed=1)
    log_c, _ = tub.read_user_behavior(path, sample_users=5, seed=2)
    assert len(log_a.user_ids) == 5 and report_a["sampling/users_seen"] == 13
    np.testing.assert_array_equal(log_a.user_ids, log_b.user_ids)
    assert not np.array_equal(log_a.user_ids, log_c.user_ids)
    kept_rows = np.isin(np.loadtxt(path, delimiter=",", usecols=0, dtype=int), log_a.user_ids)
    assert report_a["sampling/events_skipped"] == int((~kept_rows).sum())
    assert len(log_a) == int(kept_rows.sum())


@pytest.mark.parametrize("builder_cls", [tfds_builders.Beibei, tfds_builders.Taobao])
def test_ehcf_layout_dummy_data(builder_cls):
    folder = DUMMY / builder_cls.name / "dummy_data"
    prepared = prepare(builder_cls)
    has_pv = (folder / "pv.csv.zip").exists()
    assert prepared.behaviors == (("view",) if has_pv else ()) + ("cart", "buy")
    assert raw_pairs(prepared, "cart") == read_tsv_pairs(folder / "cart.csv")
    train = read_tsv_pairs(folder / "buy.train.txt")
    test = read_tsv_pairs(folder / "buy.test.txt")
    valid = {
        (prepared.user_ids[u], prepared.item_ids[i])
        for u, i in enumerate(prepared.valid_items)
        if i != prep.NO_ITEM
    }
    assert raw_pairs(prepared, "buy") | valid == train  # validation comes out of training
    assert not raw_pairs(prepared, "buy") & valid
    assert {
        (prepared.user_ids[u], prepared.item_ids[i]) for u, i in enumerate(prepared.test_items)
    } == test
    assert 3 not in {u for u, _ in valid}  # user 3 has a single training purchase


def test_taobao_ub4_merges_supportive_test_files():
    folder = DUMMY / "taobao_ub4" / "dummy_data"
    prepared = prepare(tfds_builders.TaobaoUb4)
    assert prepared.behaviors == ("pv", "fav", "cart", "buy")

    def adjacency(path):
        pairs = set()
        for line in (folder / path).read_text().splitlines():
            user, *items = (int(x) for x in line.split())
            pairs |= {(user, item) for item in items}
        return pairs

    expected_pv = adjacency("behavior_1/train.txt") | adjacency("behavior_1/test.txt")
    assert raw_pairs(prepared, "pv") == expected_pv
    assert prepared.report["records/pv/behavior_1/test.txt"] == 10
    assert prepared.report["records/buy_test"] == 10


def test_missing_supportive_behavior_is_absent(tmp_path):
    source = DUMMY / "retailrocket" / "dummy_data"
    for name in ("train.txt", "test.txt", "cart.txt"):
        (tmp_path / name).write_text((source / name).read_text())
    prepared = prepare(tfds_builders.Retailrocket, folder=tmp_path)
    assert prepared.behaviors == ("cart", "buy")


def test_movielens_dummy_titles_and_latest_rating_held_out():
    folder = DUMMY / "movielens_100k" / "dummy_data"
    prepared = prepare(tfds_builders.Movielens100k)
    rows = np.loadtxt(folder / "u.data", dtype=np.int64)
    for row, raw_user in enumerate(prepared.user_ids.tolist()):
        mine = rows[rows[:, 0] == raw_user]
        by_time = mine[np.argsort(mine[:, 3], kind="stable")]
        assert prepared.item_ids[prepared.test_items[row]] == by_time[-1, 1]
        assert prepared.item_ids[prepared.valid_items[row]] == by_time[-2, 1]
    titles = dict(zip(prepared.item_ids.tolist(), prepared.item_titles.tolist(), strict=True))
    assert titles[5] == "Café au lait (1993)"  # u.item is Latin-1
    assert prepared.report["records/rating"] == len(rows)


def test_movielens_never_goes_online(tmp_path):
    """Without u.data in the manual directory the builder says so; it downloads nothing."""
    requested = []

    class NoManualDir:
        @property
        def manual_dir(self):
            raise AssertionError("Manual directory does not exist or is empty.")

        def download_and_extract(self, url):
            requested.append(url)
            raise AssertionError("went online")

    builder = tfds_builders.Movielens100k(data_dir=str(tmp_path / "d"))
    with pytest.raises(tfds_builders.DataFormatError, match="raw files of movielens_100k"):
        builder._prepare(NoManualDir())
    assert requested == []


def test_missing_manual_directory_names_the_files(tmp_path):
    from mbrec_tf.data import loading
    from mbrec_tf.errors import UserError

    with pytest.raises(UserError, match="nowhere does not exist; beibei: .*buy.train.txt"):
        loading.load_dataset("beibei", data_dir=str(tmp_path), manual_dir=str(tmp_path / "nowhere"))
