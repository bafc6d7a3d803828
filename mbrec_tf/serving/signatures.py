"""The exported object: id lookups, exclusions, a retrieval index and TF Serving signatures.

Signatures (ids are the dataset's raw ids: `tf.string` or `tf.int64`, as the dataset has
them; returned item ids are raw ids too):

- `serving_default`: `user` [B] -> `item_ids` [B, default_k], `scores` [B, default_k]. One
  input, so every TF Serving REST form works (`{"instances": ["u1", "u2"]}`, ...).
- `top_k`: `user` [B], `k` (int32 scalar, default `default_k` in the SignatureDef) -> the
  same outputs with k columns, 1 <= k <= max_k. TF Serving's gRPC API and
  `saved_model_cli` honour the default; its REST API wants every input in the request, so
  send `{"signature_name": "top_k", "inputs": {"user": [...], "k": 20}}` (the columnar
  form: a scalar `k` cannot be a per-instance field).
- `score`: `user` [B], `item` [B, n] -> `scores` [B, n] (`model.score_pairs`).
- `user_embedding` (factorised models only): `user` [B] -> `embedding` [B, d], the query
  vector whose dot product with an item vector is the score (p_u ⊙ h_K for EHCF).
- `top_k_context` (models with a memory of supportive items: `touched`, `ehcf_memory`):
  `user` [B], `k`, and one input per supportive behavior, named after it (e.g. `cart`
  [B, n]): the items of that behavior the user has now (the cart right now, the items
  viewed this session), padded with "" (string ids) or -1 (integer ids). They replace the
  training snapshot's items of that behavior; an input of width 0 (`[B, 0]`) keeps the
  snapshot. Unknown item ids are an InvalidArgument (HTTP 400), exclusions still apply.

Top-k excludes every target item known for the user at training time (training and
validation items), as the full-ranking evaluator masks them for the test split.
The model's `scoring_tables()` (graph-propagated embeddings, item halves of first layers)
are computed once at export and saved as variables: no request recomputes them. For
factorised models the candidates come from a TFRS `BruteForce` layer indexed with the item
embeddings: it retrieves `k + L` candidates, where L is the largest number
of excluded items of a user in the request, and the excluded ones are dropped afterwards
(what TFRS's `query_with_exclusions` does, but with a per-request exclusion width instead
of a static one and a gather from a dense mask instead of an all-pairs comparison). Other
models go through `model.score_users_given`, the mask and `tf.math.top_k`. Either way the order
is by descending score; tied scores come lowest item index first (`tf.math.top_k` is
stable), whereas the evaluator counts ties pessimistically: rankings agree up to the order
within ties. `max_k` defaults to `num_items - L_max` (L_max: the largest number of known target
items of one user), so every user always has k real candidates.

Unknown ids: a user id (or, in `score`, an item id) that is not in the training data is an
error: the signature fails with InvalidArgument, naming the ids, which TF Serving's REST
API and `pipelines.serve` return as HTTP 400 `{"error": "..."}`. No silent fallback.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender
from mbrec_tf.serving import warmup


class Hidden:
    """Holds an object without tf.Module tracking it (only its variables get saved)."""

    def __init__(self, value: Any):
        self.value = value


def id_dtype(ids: np.ndarray) -> tf.DType:
    """`tf.string` for text ids, `tf.int64` for integer ids; anything else is an error."""
    kind = np.asarray(ids).dtype.kind
    if kind in "USO":
        return tf.string
    if kind in "iu":
        return tf.int64
    raise TypeError(f"raw ids must be strings or integers, got dtype {np.asarray(ids).dtype}")


def id_tensor(ids: np.ndarray, dtype: tf.DType) -> tf.Tensor:
    """Raw ids as a constant of the export's id dtype."""
    if dtype == tf.string:
        return tf.constant([str(i) for i in np.asarray(ids)], dtype=tf.string)
    return tf.constant(np.asarray(ids, dtype=np.int64))


def _index_table(ids: np.ndarray, dtype: tf.DType) -> tf.lookup.StaticHashTable:
    """Raw id -> contiguous index (int64), -1 for an id that is not in `ids`."""
    keys = id_tensor(ids, dtype)
    values = tf.range(len(ids), dtype=tf.int64)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1
    )


def max_excluded(data: MultiBehaviorData) -> int:
    """The largest number of known target items of one user (excluded from its top-k)."""
    lengths = np.diff(data.known_target_items().indptr)
    return int(lengths.max()) if len(lengths) else 0


class ServingModule(tf.Module):
    """The exported object: id lookups, exclusions, a retrieval index and the signatures.

    Only variables are tracked (the model and the retrieval layer are held untracked), so
    saving never asks Keras to serialise a subclassed model it cannot trace.
    """

    def __init__(self, model: Recommender, data: MultiBehaviorData, default_k: int, max_k: int):
        super().__init__(name="mbrec_serving")
        # Builds a lazily built model, so that its variables exist before they are listed.
        model.score_pairs(tf.constant([0]), tf.constant([0]))
        self._model = Hidden(model)
        self.user_dtype = id_dtype(data.user_ids)
        self.item_dtype = id_dtype(data.item_ids)
        self.num_items = data.num_items
        self.default_k = default_k
        self.max_k = max_k
        self.factorized = model.is_factorized
        self.context_behaviors = tuple(getattr(model, "context_behaviors", ()))
        clashes = {"user", "k", "item"} & set(self.context_behaviors)
        if clashes:
            raise ValueError(f"behaviors {sorted(clashes)} clash with signature input names")
        self.user_index = _index_table(data.user_ids, self.user_dtype)
        self.item_index = _index_table(data.item_ids, self.item_dtype)
        # Raw ids as variables: looked up by index, and readable after tf.saved_model.load.
        self.user_ids = tf.Variable(id_tensor(data.user_ids, self.user_dtype), trainable=False)
        self.item_ids = tf.Variable(id_tensor(data.item_ids, self.item_dtype), trainable=False)
        known = data.known_target_items()
        self.excluded_items = tf.Variable(known.indices.astype(np.int32), trainable=False)
        self.excluded_splits = tf.Variable(known.indptr.astype(np.int64), trainable=False)
        self.model_variables = list(model.variables)
        # What scoring derives from the parameters as a whole (graph propagation, item halves
        # of first layers), computed once here and saved, never per request.
        self.scoring_tables = [tf.Variable(t, trainable=False) for t in model.scoring_tables()]
        self._retrieval = None
        if self.factorized:
            retrieval = tfrs.layers.factorized_top_k.BruteForce(k=default_k)
            retrieval.index(
                tf.cast(model.item_embeddings_given(self._tables()), tf.float32),
                identifiers=tf.range(data.num_items, dtype=tf.int32),
            )
            self._retrieval = Hidden(retrieval)
            self.retrieval_variables = list(retrieval.variables)
        self._build_signatures()

    @property
    def model(self) -> Recommender:
        return self._model.value

    def _tables(self) -> tuple[tf.Tensor, ...]:
        return tuple(tf.convert_to_tensor(t) for t in self.scoring_tables)

    # --- id handling -------------------------------------------------------------------------
    def _indices(self, table: tf.lookup.StaticHashTable, raw: tf.Tensor, what: str) -> tf.Tensor:
        """Contiguous int32 indices of raw ids; InvalidArgument naming any unknown id."""
        found = table.lookup(raw)
        unknown = tf.boolean_mask(raw, found < 0)
        check = tf.debugging.Assert(
            tf.equal(tf.size(unknown), 0),
            [f"unknown {what} ids (not in the training data):", unknown],
            summarize=20,
        )
        with tf.control_dependencies([check]):
            return tf.cast(tf.identity(found), tf.int32)

    def _excluded_mask(self, users: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Dense bool mask [B, num_items] of known target items, and the largest row length."""
        excluded = tf.RaggedTensor.from_row_splits(
            self.excluded_items, self.excluded_splits, validate=False
        )
        rows = tf.gather(excluded, users)
        positions = tf.stack([tf.cast(rows.value_rowids(), tf.int32), rows.values], axis=1)
        counts = tf.scatter_nd(
            positions,
            tf.ones_like(rows.values),
            shape=tf.stack([tf.shape(users)[0], self.num_items]),
        )
        longest = tf.reduce_max(tf.concat([rows.row_lengths(), [0]], axis=0))
        return counts > 0, tf.cast(longest, tf.int32)

    # --- computations ------------------------------------------------------------------------
    def _context(
        self, items_by_behavior: Sequence[tf.Tensor]
    ) -> tuple[dict[str, tf.RaggedTensor], dict[str, tf.Tensor]]:
        """Request context: per behavior, its item indices (padding dropped) and whether
        it replaces the snapshot (width > 0)."""
        padding = tf.constant("" if self.item_dtype == tf.string else -1, self.item_dtype)
        context, replace = {}, {}
        for behavior, raw in zip(self.context_behaviors, items_by_behavior, strict=True):
            ragged = tf.ragged.boolean_mask(raw, tf.not_equal(raw, padding))
            indices = self._indices(self.item_index, ragged.values, f"{behavior} item")
            context[behavior] = ragged.with_values(indices)
            replace[behavior] = tf.shape(raw)[1] > 0
        return context, replace

    def _top_k(
        self, user: tf.Tensor, k: tf.Tensor, context: Sequence[tf.Tensor] | None = None
    ) -> dict[str, tf.Tensor]:
        k = tf.convert_to_tensor(k, dtype=tf.int32)
        check_k = tf.debugging.Assert(
            tf.logical_and(k >= 1, k <= self.max_k),
            [f"k must be between 1 and {self.max_k}, got", k],
        )
        with tf.control_dependencies([check_k]):
            users = self._indices(self.user_index, user, "user")
        excluded, longest = self._excluded_mask(users)
        neg_inf = tf.constant(-np.inf, tf.float32)
        if context is not None:
            rows = tf.shape(users)[0]
            checks = [
                tf.debugging.assert_equal(
                    tf.shape(items)[0],
                    rows,
                    message=f"top_k_context: `{behavior}` needs one row of item ids per user",
                )
                for behavior, items in zip(self.context_behaviors, context, strict=True)
            ]
            with tf.control_dependencies(checks):
                items_by_behavior, replace = self._context(context)
            scores = self.model.score_users_with_context(users, items_by_behavior, replace)
            scores = tf.cast(scores, tf.float32)
            top_scores, top_items = tf.math.top_k(tf.where(excluded, neg_inf, scores), k=k)
        elif self.factorized:
            queries = tf.cast(self.model.query_embeddings_given(users, self._tables()), tf.float32)
            fetch = tf.minimum(k + longest, self.num_items)
            scores, candidates = self._retrieval.value(queries, k=fetch)
            dropped = tf.gather(excluded, candidates, batch_dims=1)
            _, order = tf.math.top_k(tf.where(dropped, neg_inf, scores), k=k)
            top_scores = tf.gather(scores, order, batch_dims=1)
            top_items = tf.gather(candidates, order, batch_dims=1)
        else:
            scores = tf.cast(self.model.score_users_given(users, self._tables()), tf.float32)
            top_scores, top_items = tf.math.top_k(tf.where(excluded, neg_inf, scores), k=k)
        return {"item_ids": tf.gather(self.item_ids, top_items), "scores": top_scores}

    def _score(self, user: tf.Tensor, item: tf.Tensor) -> dict[str, tf.Tensor]:
        check = tf.debugging.assert_equal(
            tf.shape(item)[0],
            tf.shape(user)[0],
            message="score: `item` needs one row of item ids per user",
        )
        with tf.control_dependencies([check]):
            users = self._indices(self.user_index, user, "user")
        items = self._indices(self.item_index, item, "item")
        scores = self.model.score_pairs_given(users, items, self._tables())
        return {"scores": tf.cast(scores, tf.float32)}

    def _user_embedding(self, user: tf.Tensor) -> dict[str, tf.Tensor]:
        users = self._indices(self.user_index, user, "user")
        queries = self.model.query_embeddings_given(users, self._tables())
        return {"embedding": tf.cast(queries, tf.float32)}

    # --- signatures --------------------------------------------------------------------------
    def _build_signatures(self) -> None:
        user_spec = tf.TensorSpec([None], self.user_dtype, name="user")
        item_spec = tf.TensorSpec([None, None], self.item_dtype, name="item")
        k_spec = tf.TensorSpec([], tf.int32, name="k")
        default_k = tf.constant(self.default_k, dtype=tf.int32)

        def serving_default(user):
            return self._top_k(user, default_k)

        def top_k(user, k=default_k):
            return self._top_k(user, k)

        def score(user, item):
            return self._score(user, item)

        def score_all(user):
            users = self._indices(self.user_index, user, "user")
            return tf.cast(self.model.score_users_given(users, self._tables()), tf.float32)

        self.serving_default = tf.function(serving_default, input_signature=[user_spec])
        self.top_k = tf.function(top_k, input_signature=[user_spec, k_spec])
        self.score = tf.function(score, input_signature=[user_spec, item_spec])
        # Not a serving signature: every item's score, in `item_ids` order, for
        # `load_exported` (evaluating an export).
        self.score_all = tf.function(score_all, input_signature=[user_spec])
        if self.context_behaviors:
            context_specs = [
                tf.TensorSpec([None, None], self.item_dtype, name=behavior)
                for behavior in self.context_behaviors
            ]

            def top_k_context(user, k, *items_by_behavior):
                return self._top_k(user, k, items_by_behavior)

            # Named parameters, one per behavior: the signature's input names.
            parameter = inspect.Parameter
            top_k_context.__signature__ = inspect.Signature(
                [
                    parameter(name, parameter.POSITIONAL_OR_KEYWORD)
                    for name in ("user", "k", *self.context_behaviors)
                ]
            )
            self.top_k_context = tf.function(
                top_k_context, input_signature=[user_spec, k_spec, *context_specs]
            )
        if self.factorized:

            def user_embedding(user):
                return self._user_embedding(user)

            self.user_embedding = tf.function(user_embedding, input_signature=[user_spec])

    def signatures(self) -> dict[str, Any]:
        """Signature name -> tf.function, for `tf.saved_model.save`."""
        signatures = {
            "serving_default": self.serving_default,
            "top_k": self.top_k,
            "score": self.score,
        }
        if self.factorized:
            signatures["user_embedding"] = self.user_embedding
        if self.context_behaviors:
            signatures["top_k_context"] = self.top_k_context
        return signatures


def warmup_requests(module: ServingModule, data: MultiBehaviorData) -> list[warmup.Request]:
    """A few real requests (one per signature), built from the first users and items."""
    users = np.asarray(data.user_ids[: min(3, data.num_users)])
    items = np.asarray(data.item_ids[: min(2, data.num_items)])
    user_values = request_values(users, module.user_dtype)
    item_values = request_values(items, module.item_dtype)
    item_rows = np.tile(item_values[None, :], (len(user_values), 1))
    requests = [
        warmup.Request("serving_default", {"user": user_values}),
        warmup.Request("top_k", {"user": user_values, "k": np.int32(module.max_k)}),
        warmup.Request("score", {"user": user_values, "item": item_rows}),
    ]
    if module.factorized:
        requests.append(warmup.Request("user_embedding", {"user": user_values}))
    if module.context_behaviors:
        context = {b: item_rows for b in module.context_behaviors}
        requests.append(
            warmup.Request(
                "top_k_context", {"user": user_values, "k": np.int32(module.default_k), **context}
            )
        )
    return requests


def request_values(ids: np.ndarray, dtype: tf.DType) -> np.ndarray:
    """Raw ids as a request would send them: UTF-8 bytes or int64."""
    if dtype == tf.string:
        return np.array([str(i).encode("utf-8") for i in ids], dtype=object)
    return np.asarray(ids, dtype=np.int64)


def describe_signatures(module: ServingModule) -> dict[str, Any]:
    """The signatures' inputs and outputs in words, for the export's metadata file."""
    user = f"{module.user_dtype.name}[batch]"
    item = f"{module.item_dtype.name}"
    top = {"item_ids": f"{item}[batch, k]", "scores": "float32[batch, k]"}
    described = {
        "serving_default": {"inputs": {"user": user}, "outputs": top, "k": module.default_k},
        "top_k": {
            "inputs": {"user": user, "k": f"int32 scalar in [1, {module.max_k}]"},
            "defaults": {"k": module.default_k},
            "outputs": top,
        },
        "score": {
            "inputs": {"user": user, "item": f"{item}[batch, n]"},
            "outputs": {"scores": "float32[batch, n]"},
        },
    }
    if module.context_behaviors:
        described["top_k_context"] = {
            "inputs": {
                "user": user,
                "k": f"int32 scalar in [1, {module.max_k}]",
                **{
                    b: f"{item}[batch, n]: the user's {b} items now, padded with "
                    + ('""' if module.item_dtype == tf.string else "-1")
                    + "; width 0 keeps the training snapshot"
                    for b in module.context_behaviors
                },
            },
            "outputs": top,
        }
    if module.factorized:
        described["user_embedding"] = {
            "inputs": {"user": user},
            "outputs": {"embedding": "float32[batch, d]"},
        }
    return described
