"""The scoring-tables hook: what a scorer derives from all its parameters (here a graph
propagation) is computed once per evaluation and once per export, never per user batch or
request, and scores the same as the per-batch path."""

import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from mbrec_tf.data.generated import random_data
from mbrec_tf.evaluation import Evaluator
from mbrec_tf.models.base import Recommender
from mbrec_tf.serving import export as export_lib


class PropagatedMF(Recommender):
    """MF whose user and item vectors are one step of propagation over the target graph."""

    def __init__(self, data, dim: int = 8, seed: int = 0):
        super().__init__(num_users=data.num_users, num_items=data.num_items)
        rng = np.random.default_rng(seed)
        self.users = tf.Variable(rng.normal(size=(data.num_users, dim)), dtype=tf.float32)
        self.items = tf.Variable(rng.normal(size=(data.num_items, dim)), dtype=tf.float32)
        graph = data.target_train.astype(np.float32)
        degrees = np.maximum(np.asarray(graph.sum(axis=1)).ravel(), 1.0)
        self.adjacency = tf.constant((graph.multiply(1.0 / degrees[:, None])).toarray())
        self.propagations = 0  # eager calls
        self.traced_propagations = 0  # calls while tracing a tf.function (once per graph)

    def propagate(self) -> tuple[tf.Tensor, tf.Tensor]:
        if tf.executing_eagerly():
            self.propagations += 1
        else:
            self.traced_propagations += 1
        users = self.users + tf.matmul(self.adjacency, self.items)
        items = self.items + tf.matmul(self.adjacency, self.users, transpose_a=True)
        return users, items

    def query_embeddings(self, user_ids):
        return tf.gather(self.propagate()[0], user_ids)

    def item_embeddings(self):
        return self.propagate()[1]


class PropagatedOnce(PropagatedMF):
    """The same scorer with the hook: propagation once, then lookups in its tables."""

    def scoring_tables(self):
        return self.propagate()

    def query_embeddings_given(self, user_ids, tables):
        return tf.gather(tables[0], user_ids)

    def item_embeddings_given(self, tables):
        return tables[1]


def test_evaluation_propagates_once_and_ranks_as_per_batch():
    data = random_data(num_users=40, num_items=30, seed=3)
    evaluator = Evaluator(data, "test", protocols=("full",), batch_size=8)
    per_batch, once = PropagatedMF(data), PropagatedOnce(data)
    expected = evaluator(per_batch)
    got = evaluator(once)
    assert (once.propagations, once.traced_propagations) == (1, 0)
    assert per_batch.traced_propagations > 0  # inside the per-batch function: every batch
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, err_msg=name)


def test_export_saves_the_tables_and_serves_without_propagating(tmp_path):
    data = random_data(num_users=20, num_items=30, seed=4)
    model = PropagatedOnce(data)
    path = export_lib.export_model(model, data, str(tmp_path))
    assert model.traced_propagations == 0  # no signature propagates: requests read the tables
    users, items = model.propagate()
    expected = np.argsort(-(users.numpy()[:2] @ items.numpy().T), axis=1, kind="stable")
    code = textwrap.dedent(
        f"""
        import json, tensorflow as tf
        loaded = tf.saved_model.load({path!r})
        out = loaded.signatures["score"](
            user=tf.constant(["u0", "u1"]), item=tf.constant([[100, 101], [102, 103]], tf.int64)
        )
        print(json.dumps(out["scores"].numpy().tolist()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    served = np.array(__import__("json").loads(result.stdout.strip().splitlines()[-1]))
    want = np.array(
        [
            users.numpy()[0] @ items.numpy()[[0, 1]].T,
            users.numpy()[1] @ items.numpy()[[2, 3]].T,
        ]
    )
    np.testing.assert_allclose(served, want, rtol=1e-5)
    top = model.score_users_given(tf.constant([0, 1]), model.scoring_tables()).numpy()
    assert np.array_equal(np.argsort(-top, axis=1, kind="stable"), expected)
