"""export_model: signatures, raw ids, exclusions, k, versions and atomic writes (in-process)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import BiasedModel, DotModel, expected_top_k

from mbrec_tf.models import popularity
from mbrec_tf.models.base import Recommender
from mbrec_tf.serving import export as export_lib


def _build(kind: str, data):
    if kind == "popularity":
        return popularity.Popularity(data.item_popularity(), data.num_users)
    if kind == "dot":
        return DotModel(data.num_users, data.num_items)
    return BiasedModel(data.num_users, data.num_items)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, string_data, int_data):
    """(kind, ids) -> (model, data, loaded SavedModel, version dir), exported once."""
    cache = {}

    def get(kind: str, ids: str = "string"):
        if (kind, ids) not in cache:
            data = string_data if ids == "string" else int_data
            model = _build(kind, data)
            base = tmp_path_factory.mktemp(f"{kind}_{ids}")
            path = export_lib.export_model(
                model, data, str(base), default_k=5, metadata={"model": kind, "lr": 0.1}
            )
            cache[kind, ids] = (model, data, tf.saved_model.load(path), path)
        return cache[kind, ids]

    return get


def _raw(ids: np.ndarray) -> tf.Tensor:
    if ids.dtype.kind in "US":
        return tf.constant(ids.astype(str))
    return tf.constant(ids.astype(np.int64))


@pytest.mark.parametrize(
    "kind,ids",
    [("popularity", "string"), ("dot", "string"), ("biased", "string"), ("dot", "int")],
)
def test_top_k_is_the_masked_full_ranking(exports, kind, ids):
    model, data, loaded, _ = exports(kind, ids)
    users = np.array([0, 3, 7, 11])
    order, scores = expected_top_k(model, data, users, k=5)
    out = loaded.signatures["serving_default"](user=_raw(data.user_ids[users]))
    # Raw item ids come back, in the exact masked order (ties: lowest index first).
    np.testing.assert_array_equal(
        out["item_ids"].numpy().astype(str), data.item_ids[order].astype(str)
    )
    np.testing.assert_allclose(out["scores"].numpy(), scores, rtol=1e-6)
    for row, user in enumerate(users):
        assert not set(order[row]) & set(data.known_target_items()[user].indices)


@pytest.mark.parametrize("kind", ["dot", "biased"])
def test_top_k_signature_takes_k(exports, kind):
    model, data, loaded, _ = exports(kind)
    users = np.array([1, 2])
    order, _ = expected_top_k(model, data, users, k=12)
    out = loaded.signatures["top_k"](user=_raw(data.user_ids[users]), k=tf.constant(12))
    assert out["item_ids"].shape == (2, 12)
    np.testing.assert_array_equal(out["item_ids"].numpy(), data.item_ids[order])


def test_max_k_leaves_every_user_k_real_candidates(exports):
    model, data, loaded, path = exports("dot")
    longest = int(np.diff(data.known_target_items().indptr).max())
    max_k = data.num_items - longest
    assert export_lib.read_metadata(path)["max_k"] == max_k
    users = np.arange(data.num_users)
    out = loaded.signatures["top_k"](user=_raw(data.user_ids), k=tf.constant(max_k))
    assert np.all(np.isfinite(out["scores"].numpy()))
    order, _ = expected_top_k(model, data, users, k=max_k)
    np.testing.assert_array_equal(out["item_ids"].numpy(), data.item_ids[order])
    for bad_k in (0, max_k + 1):
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=f"k must be between 1 and {max_k}"
        ):
            loaded.signatures["top_k"](user=_raw(data.user_ids[:1]), k=tf.constant(bad_k))


@pytest.mark.parametrize(
    "kind,ids", [("popularity", "string"), ("biased", "string"), ("dot", "int")]
)
def test_score_signature_equals_score_pairs(exports, kind, ids):
    model, data, loaded, _ = exports(kind, ids)
    rng = np.random.default_rng(0)
    users = rng.integers(0, data.num_users, size=5)
    items = rng.integers(0, data.num_items, size=(5, 3))
    expected = model.score_pairs(tf.constant(users), tf.constant(items)).numpy()
    out = loaded.signatures["score"](
        user=_raw(data.user_ids[users]), item=_raw(data.item_ids[items])
    )
    np.testing.assert_allclose(out["scores"].numpy(), expected, rtol=1e-6)


def test_user_embedding_only_for_factorised_models(exports):
    model, data, loaded, _ = exports("dot")
    out = loaded.signatures["user_embedding"](user=_raw(data.user_ids[[4, 5]]))
    np.testing.assert_allclose(
        out["embedding"].numpy(), model.query_embeddings(tf.constant([4, 5]))
    )
    _, _, biased, _ = exports("biased")
    assert "user_embedding" not in biased.signatures
    assert set(biased.signatures) == {"serving_default", "top_k", "score"}


def test_unknown_ids_are_an_invalid_argument(exports):
    _, data, loaded, _ = exports("dot")
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown user ids.*nobody"):
        loaded.signatures["serving_default"](user=tf.constant([str(data.user_ids[0]), "nobody"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown item ids.*99999"):
        loaded.signatures["score"](
            user=tf.constant([str(data.user_ids[0])]), item=tf.constant([[99999]], tf.int64)
        )
    _, int_data, int_loaded, _ = exports("dot", "int")
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown user ids.*77"):
        int_loaded.signatures["serving_default"](user=tf.constant([77], tf.int64))


def test_metadata_and_assets(exports):
    _, data, loaded, path = exports("dot")
    meta = export_lib.read_metadata(path)
    assert meta["version"] == 1 and os.path.basename(path) == "1"
    assert meta["run"] == {"model": "dot", "lr": 0.1}
    assert (meta["user_id_dtype"], meta["item_id_dtype"]) == ("string", "int64")
    assert meta["factorized"] is True and meta["default_k"] == 5
    assert meta["example_users"] == [str(u) for u in data.user_ids[:3]]
    assert set(meta["signatures"]) == {"serving_default", "top_k", "score", "user_embedding"}
    assert os.path.exists(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    np.testing.assert_array_equal(loaded.item_ids.numpy(), data.item_ids)
    assert export_lib.read_item_titles(path) == {}


def test_item_titles_are_stored(tmp_path, string_data):
    titles = np.array([f"Title {i}" for i in range(string_data.num_items)])
    data = dataclasses.replace(string_data, item_titles=titles)
    path = export_lib.export_model(
        popularity.Popularity(data.item_popularity(), data.num_users), data, str(tmp_path)
    )
    stored = export_lib.read_item_titles(path)
    assert stored[str(data.item_ids[3])] == "Title 3" and len(stored) == data.num_items


def test_versions_are_numbered_and_never_overwritten(tmp_path, string_data):
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    base = str(tmp_path / "export")
    os.makedirs(os.path.join(base, "not-a-version"))
    first = export_lib.export_model(model, string_data, base)
    second = export_lib.export_model(model, string_data, base)
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert export_lib.export_model(model, string_data, base, version=10).endswith("10")
    assert export_lib.next_version(base) == 11
    assert export_lib.resolve_version_dir(base).endswith("10")
    with pytest.raises(FileExistsError):
        export_lib.export_model(model, string_data, base, version=2)
    assert sorted(os.listdir(base)) == ["1", "10", "2", "not-a-version"]  # no staging left


def test_a_failed_export_leaves_nothing_behind(tmp_path, string_data, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_lib.tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export_model(
            popularity.Popularity(string_data.item_popularity(), string_data.num_users),
            string_data,
            str(tmp_path),
        )
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path, string_data):
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    with pytest.raises(ValueError, match="default_k"):
        export_lib.export_model(model, string_data, str(tmp_path), default_k=0)
    with pytest.raises(ValueError, match="max_k"):
        export_lib.export_model(model, string_data, str(tmp_path), max_k=string_data.num_items)
    other = DotModel(string_data.num_users, string_data.num_items + 1)
    with pytest.raises(ValueError, match="items"):
        export_lib.export_model(other, string_data, str(tmp_path))


@pytest.mark.parametrize("kind", ["dot", "biased"])
def test_load_exported_scores_like_the_model(exports, kind):
    model, data, _, path = exports(kind)
    exported = export_lib.load_exported(os.path.dirname(path), data)
    users = tf.constant([0, 5, 9])
    np.testing.assert_allclose(exported.score_users(users), model.score_users(users), rtol=1e-6)
    items = tf.constant([[1, 2], [3, 4], [5, 6]])
    np.testing.assert_allclose(
        exported.score_pairs(users, items), model.score_pairs(users, items), rtol=1e-6
    )
    single = tf.constant([7, 8, 9])
    np.testing.assert_allclose(
        exported.score_pairs(users, single), model.score_pairs(users, single), rtol=1e-6
    )


def test_metadata_file_is_json(exports):
    _, _, _, path = exports("biased")
    with open(os.path.join(path, "assets.extra", export_lib.METADATA_FILE)) as file:
        assert json.load(file)["factorized"] is False


class _LazyModel(Recommender):  # its Keras layers build on first call
    requires_training = False

    def __init__(self, num_users: int, num_items: int):
        super().__init__(num_users=num_users, num_items=num_items)
        self.users = tf.keras.layers.Embedding(num_users, 3)
        self.items = tf.keras.layers.Embedding(num_items, 3)

    def query_embeddings(self, user_ids):
        return self.users(user_ids)

    def item_embeddings(self):
        return self.items(tf.range(self.num_items))


def test_a_model_not_built_yet_is_exported_with_its_weights(tmp_path, string_data):
    model = _LazyModel(string_data.num_users, string_data.num_items)
    assert not model.variables
    path = export_lib.export_model(model, string_data, str(tmp_path), default_k=4)
    loaded = tf.saved_model.load(path)
    order, _ = expected_top_k(model, string_data, np.array([3]), k=4)
    out = loaded.signatures["serving_default"](user=tf.constant(["u3"]))
    np.testing.assert_array_equal(out["item_ids"].numpy()[0], string_data.item_ids[order[0]])


@pytest.mark.parametrize("kind", ["popularity", "biased"])
def test_evaluating_an_export_gives_the_model_metrics(exports, kind):
    from mbrec_tf.evaluation import Evaluator

    model, data, _, path = exports(kind)
    evaluator = Evaluator(data, split="test", ks=(5, 10))
    assert evaluator(export_lib.load_exported(path, data)) == pytest.approx(evaluator(model))
