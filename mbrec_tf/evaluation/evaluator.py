"""Batched evaluation of a `Recommender` under both protocols of docs/evaluation.md.

Full ranking: every item is a candidate except the user's *target* items known before the
split (training items; for the test split also the validation item), so an item the user
already bought is never a candidate; supportive-only items stay candidates and the held-out
item is never masked. A non-finite score never helps (see `metrics`). The model's
`scoring_tables()` (graph propagation, per-item halves of first layers) are computed once
per evaluation; scores come from one matrix product per user batch for factorised models
(item vectors once per evaluation) or from `score_users_given` otherwise; the rank is found
by counting the items that score at least as high as the held-out one (no sort, no loop
over items or users).

Sampled: the held-out item is ranked among the stored negatives of the split
(`data.negatives(split)`, the same for every model) scored with `score_pairs`.

Both protocols share `metrics.pessimistic_ranks` and `metrics.summarize_ranks`; the only
thing that differs is where the candidate scores come from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.evaluation import metrics
from mbrec_tf.evaluation.ranking import full_and_new_ranks, sampled_ranks_from_scores
from mbrec_tf.models.base import Recommender

logger = logging.getLogger(__name__)

FULL = "full"
SAMPLED = "sampled"
PROTOCOLS = (FULL, SAMPLED)
#: Key of `Evaluator.ranks` for full-ranking ranks among the user's untouched items.
UNTOUCHED = "untouched"
SAMPLED_PREFIX = "sampled/"
GROUPS_PREFIX = "groups/"
#: Full ranking of the users whose held-out item they had in a supportive behavior.
TOUCHED_PREFIX = "touched/"
#: Full ranking of the other users, among the items they never touched (discovery).
NEW_PREFIX = "new/"
ITEM_GROUP_PREFIXES = (TOUCHED_PREFIX, NEW_PREFIX)
#: Upper bounds of the user groups by number of target training interactions:
#: 1-4, 5-8, 9-16, 17-32 and >32 (users with none form group "0").
DEFAULT_GROUP_BOUNDS: tuple[int, ...] = (4, 8, 16, 32)
#: The sampled protocol always reports this cut-off (the NCF protocol's HR@10 / NDCG@10).
SAMPLED_PROTOCOL_K = 10
DEFAULT_BATCH_SIZE = 512
#: Most scores one evaluation batch holds (users x items): 2^25 float32 scores, 128 MiB.
#: At 200k items a batch is 167 users; Beibei's 7,977 items keep the 512 of the default.
MAX_BATCH_SCORES = 1 << 25
#: Most (user, item) mask and touched pairs kept between calls (2^25 pairs, 256 MiB); the
#: masks of a larger evaluation are rebuilt batch by batch at each call instead.
MAX_CACHED_PAIRS = 1 << 25


def _pairs_of(rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every stored entry of a CSR matrix, row-major."""
    return np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices


class _Batch(NamedTuple):
    """One batch of evaluated users with everything its ranks need, as constant tensors."""

    users: tf.Tensor  # int32 [B]
    targets: tf.Tensor  # int32 [B], the held-out items
    masked_rows: tf.Tensor  # int32 [M], position in the batch of each masked item
    masked_items: tf.Tensor  # int32 [M], target-train items (never the held-out one)
    touched_rows: tf.Tensor  # int32 [T], position in the batch of each touched item
    touched_items: tf.Tensor  # int32 [T], supportive items not masked nor held out
    negatives: tf.Tensor | None  # int32 [B, n] stored sampled negatives


def group_labels(bounds: Sequence[int]) -> list[str]:
    """Group names for `bounds`, e.g. (4, 8) -> ["0", "1-4", "5-8", ">8"]."""
    labels, low = ["0"], 1
    for high in bounds:
        labels.append(str(low) if low == high else f"{low}-{high}")
        low = high + 1
    labels.append(f">{bounds[-1]}")
    return labels


def group_index(counts: np.ndarray, bounds: Sequence[int]) -> np.ndarray:
    """Index into `group_labels(bounds)` of each user's number of target training items."""
    counts = np.asarray(counts)
    return np.where(counts == 0, 0, 1 + np.searchsorted(np.asarray(bounds), counts, side="left"))


def sample_held_out(
    data: MultiBehaviorData, split: str, sample_users: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of `split`'s held-out pairs, or of a seeded sample of `sample_users`
    of them (in user order; all of them when None or not fewer than there are)."""
    users, items = data.held_out(split)
    if sample_users is None or sample_users >= len(users):
        return users, items
    chosen = np.sort(np.random.default_rng(seed).choice(len(users), sample_users, replace=False))
    return users[chosen], items[chosen]


class Evaluator:
    """Evaluates models on one split of one dataset; reusable across models and epochs.

    Everything that depends only on the data (held-out pairs, per-batch masks, stored
    negatives, user groups) is prepared once here. Calling the evaluator on a model
    returns a flat dict of Python floats:
      "num_users", "hr@K", "ndcg@K", "mrr"               full ranking, K in `ks`;
      "sampled/hr@K", "sampled/ndcg@K", "sampled/mrr"     sampled, K = 10 and K in `ks`
                                                          below the number of candidates;
      "groups/<g>/num_users", "groups/<g>/hr@K", ...      full ranking per user group, g in
                                                          "0", "1-4", ..., ">32";
      "touched/num_users", "touched/hr@K", ...            full ranking of the users whose
                                                          held-out item was in a supportive
                                                          behavior of the training data;
      "new/num_users", "new/hr@K", ...                    the other users, ranked among the
                                                          items they never touched (touched
                                                          items masked too): discovery.
    If the split has no stored negatives, the sampled protocol is skipped with a warning.

    `sample_users=N` evaluates a seeded sample of N of the split's users (all when None or
    at least their number), drawn once with `seed`, so every call (every epoch) ranks the
    same users. Memory is bounded by the batch's scores (`max_batch_scores` caps users x
    items per batch) and by the evaluated users' own masks: supportive pairs are read per
    batch, and when the evaluated users' pairs exceed `max_cached_pairs` the batches are
    rebuilt at each call instead of kept.
    """

    def __init__(
        self,
        data: MultiBehaviorData,
        split: str = "test",
        ks: Sequence[int] = metrics.DEFAULT_KS,
        protocols: Sequence[str] = PROTOCOLS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        group_bounds: Sequence[int] = DEFAULT_GROUP_BOUNDS,
        sample_users: int | None = None,
        seed: int = 0,
        max_batch_scores: int = MAX_BATCH_SCORES,
        max_cached_pairs: int = MAX_CACHED_PAIRS,
    ):
        self.ks = tuple(int(k) for k in ks)
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {tuple(ks)}")
        unknown = [p for p in protocols if p not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocols {unknown}; known: {PROTOCOLS}")
        self.group_bounds = tuple(int(b) for b in group_bounds)
        if not self.group_bounds or list(self.group_bounds) != sorted(set(self.group_bounds)):
            raise ValueError(f"group_bounds must be increasing, got {tuple(group_bounds)}")
        if self.group_bounds[0] < 1:
            raise ValueError(f"group_bounds must be >= 1, got {self.group_bounds}")
        if batch_size < 1 or max_batch_scores < 1:
            raise ValueError(
                f"batch_size and max_batch_scores must be positive, got {batch_size}, "
                f"{max_batch_scores}"
            )
        if sample_users is not None and sample_users < 1:
            raise ValueError(f"sample_users must be positive, got {sample_users}")

        self.data = data
        self.split = split
        self.num_items = data.num_items
        self.batch_size = max(1, min(int(batch_size), int(max_batch_scores) // self.num_items))
        self.users, self.items = sample_held_out(data, split, sample_users, seed)
        train_counts = np.diff(data.target_train.indptr)[self.users]
        self.group_names = group_labels(self.group_bounds)
        self.user_groups = group_index(train_counts, self.group_bounds)

        negatives = data.negatives(split)
        self.protocols = tuple(p for p in PROTOCOLS if p in protocols)
        if SAMPLED in self.protocols and negatives is None:
            logger.warning(
                "%s/%s has no stored sampled negatives: skipping the sampled protocol",
                data.name,
                split,
            )
            self.protocols = tuple(p for p in self.protocols if p != SAMPLED)
        if SAMPLED in self.protocols:
            negatives = np.asarray(negatives)[self.users]
            if negatives.size and (negatives.min() < 0 or negatives.max() >= self.num_items):
                raise ValueError(
                    f"{data.name}/{split}: stored negatives of evaluated users must be item "
                    f"indices in 0..{self.num_items - 1}"
                )
            num_candidates = 1 + negatives.shape[1]
            self.sampled_ks = tuple(
                sorted({k for k in (SAMPLED_PROTOCOL_K, *self.ks) if k < num_candidates})
            )
        else:
            negatives, self.sampled_ks = None, ()
        if not len(self.users):
            logger.warning("%s/%s has no held-out items: nothing to evaluate", data.name, split)
        self._negatives = negatives
        self._known = data.known_target_items(before=self.split)
        # One pass over the batches: whether each user had the held-out item in a supportive
        # behavior, and the batches themselves when their masks are small enough to keep.
        keep = self._evaluated_pairs() <= max_cached_pairs
        touched_flags, batches = [], []
        for start in range(0, len(self.users), self.batch_size):
            batch, touched = self._make_batch(start)
            touched_flags.append(touched)
            if keep:
                batches.append(batch)
        self.user_touched = np.concatenate([np.zeros(0, bool), *touched_flags])
        self._batches: list[_Batch] | None = batches if keep else None
        self._compiled: tuple[Recommender, tf.DType | None, dict] | None = None
        #: Wall time of the last call, in seconds.
        self.last_seconds = 0.0

    @property
    def num_users(self) -> int:
        return int(len(self.users))

    def _evaluated_pairs(self) -> int:
        """Known-target and supportive pairs of the evaluated users (the masks' size)."""
        matrices = [self._known, *(self.data.train[b] for b in self.data.supportive_behaviors)]
        return int(sum(np.diff(m.indptr)[self.users].sum() for m in matrices))

    def _batches_of_a_call(self) -> Iterator[_Batch]:
        """The batches: kept ones, or rebuilt one at a time (large evaluations)."""
        if self._batches is not None:
            yield from self._batches
            return
        for start in range(0, len(self.users), self.batch_size):
            yield self._make_batch(start)[0]

    def _make_batch(self, start: int) -> tuple[_Batch, np.ndarray]:
        """The batch of evaluated users from `start` with its masks, and whether each of
        its users had the held-out item in a supportive behavior."""
        end = start + self.batch_size
        users, targets = self.users[start:end], self.items[start:end]
        rows = self._known[users]
        masked_rows = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
        masked_items = rows.indices
        keep = masked_items != targets[masked_rows]  # never mask the held-out item
        touched = sp.csr_matrix((len(users), self.num_items), dtype=np.float32)
        for behavior in self.data.supportive_behaviors:
            touched = touched + self.data.train[behavior][users]
        touched = sp.csr_matrix(touched)
        held_out_touched = np.asarray(touched[np.arange(len(users)), targets]).ravel() > 0
        # Touched pairs that are not masked already (nor the held-out item).
        unmasked = sp.csr_matrix(touched - touched.multiply(rows))
        unmasked.eliminate_zeros()
        unmasked.sort_indices()
        touched_rows, touched_items = _pairs_of(unmasked)
        fresh = touched_items != targets[touched_rows]
        negatives = None if self._negatives is None else self._negatives[start:end]
        batch = _Batch(
            users=tf.constant(users, dtype=tf.int32),
            targets=tf.constant(targets, dtype=tf.int32),
            masked_rows=tf.constant(masked_rows[keep], dtype=tf.int32),
            masked_items=tf.constant(masked_items[keep], dtype=tf.int32),
            touched_rows=tf.constant(touched_rows[fresh], dtype=tf.int32),
            touched_items=tf.constant(touched_items[fresh], dtype=tf.int32),
            negatives=None if negatives is None else tf.constant(negatives, dtype=tf.int32),
        )
        return batch, held_out_touched

    # --- ranking -----------------------------------------------------------------------------
    def _rank_functions(
        self, model: Recommender, item_dtype: tf.DType | None, tables: tuple = ()
    ) -> dict:
        """Graph-compiled per-batch rank functions for `model` (cached for the last model)."""
        side_specs = tuple(tf.TensorSpec.from_tensor(t) for t in tables)
        if self._compiled is not None:
            cached_model, cached_key, cached_functions = self._compiled
            if cached_model is model and cached_key == (item_dtype, side_specs):
                return cached_functions
        ids = tf.TensorSpec([None], tf.int32)
        functions = {}
        if item_dtype is not None:
            vectors = tf.TensorSpec([None, None], item_dtype)

            @tf.function(input_signature=[vectors, side_specs, ids, ids, ids, ids, ids, ids])
            def full(item_vectors, tables, users, targets, *pairs):
                queries = model.query_embeddings_given(users, tables)
                scores = tf.matmul(queries, item_vectors, transpose_b=True)
                return full_and_new_ranks(scores, targets, *pairs)

        else:

            @tf.function(input_signature=[side_specs, ids, ids, ids, ids, ids, ids])
            def full(tables, users, targets, *pairs):
                scores = model.score_users_given(users, tables)
                if scores.shape[-1] is not None and scores.shape[-1] != self.num_items:
                    raise ValueError(
                        f"score_users returned {scores.shape[-1]} items, expected {self.num_items}"
                    )
                return full_and_new_ranks(scores, targets, *pairs)

        functions[FULL] = full

        @tf.function(input_signature=[side_specs, ids, ids, tf.TensorSpec([None, None], tf.int32)])
        def sampled(tables, users, targets, negatives):
            candidates = tf.concat([targets[:, None], negatives], axis=1)
            scores = model.score_pairs_given(users, candidates, tables)
            return sampled_ranks_from_scores(scores, negatives, targets)

        functions[SAMPLED] = sampled
        self._compiled = (model, (item_dtype, side_specs), functions)
        return functions

    def ranks(self, model: Recommender) -> dict[str, np.ndarray]:
        """Per protocol, the 0-based rank of each evaluated user's held-out item.

        Rows follow `self.users`; ranks are counted among the protocol's candidates with
        ties pessimistic (see `metrics.pessimistic_ranks`).
        """
        model_items = getattr(model, "num_items", self.num_items)
        if model_items != self.num_items:
            raise ValueError(f"model scores {model_items} items, the data has {self.num_items}")
        # What scoring derives from the parameters as a whole, once per evaluation.
        tables = tuple(model.scoring_tables())
        if getattr(model, "is_factorized", False):
            item_vectors = tf.convert_to_tensor(model.item_embeddings_given(tables))
            functions = self._rank_functions(model, item_vectors.dtype, tables)
            full_args: tuple = (item_vectors, tables)
        else:
            functions = self._rank_functions(model, None, tables)
            full_args = (tables,)
        ranks: dict[str, list[np.ndarray]] = {p: [] for p in self.protocols}
        if FULL in self.protocols:
            ranks[UNTOUCHED] = []
        for batch in self._batches_of_a_call():
            if FULL in self.protocols:
                full_ranks, untouched_ranks = functions[FULL](
                    *full_args,
                    batch.users,
                    batch.targets,
                    batch.masked_rows,
                    batch.masked_items,
                    batch.touched_rows,
                    batch.touched_items,
                )
                ranks[FULL].append(full_ranks.numpy())
                ranks[UNTOUCHED].append(untouched_ranks.numpy())
            if SAMPLED in self.protocols:
                sampled_ranks = functions[SAMPLED](
                    tables, batch.users, batch.targets, batch.negatives
                )
                ranks[SAMPLED].append(sampled_ranks.numpy())
        return {
            protocol: np.concatenate(parts) if parts else np.zeros([0], np.int32)
            for protocol, parts in ranks.items()
        }

    # --- metrics -----------------------------------------------------------------------------
    def summarize(self, ranks: dict[str, np.ndarray]) -> dict[str, float]:
        """The flat metrics dict (see the class docstring) from `ranks(model)`'s output."""
        results: dict[str, float] = {"num_users": float(self.num_users)}
        if FULL in ranks:
            results.update(metrics.summarize_ranks(ranks[FULL], self.ks))
        if SAMPLED in ranks:
            results.update(metrics.summarize_ranks(ranks[SAMPLED], self.sampled_ks, SAMPLED_PREFIX))
        if FULL in ranks:
            groups = (
                (TOUCHED_PREFIX, self.user_touched, ranks[FULL]),
                (NEW_PREFIX, ~self.user_touched, ranks[UNTOUCHED]),
            )
            for prefix, members, group_ranks in groups:
                results[f"{prefix}num_users"] = float(members.sum())
                results.update(metrics.summarize_ranks(group_ranks[members], self.ks, prefix))
            for index, name in enumerate(self.group_names):
                in_group = self.user_groups == index
                prefix = f"{GROUPS_PREFIX}{name}/"
                results[f"{prefix}num_users"] = float(in_group.sum())
                results.update(metrics.summarize_ranks(ranks[FULL][in_group], self.ks, prefix))
        return results

    def __call__(self, model: Recommender) -> dict[str, float]:
        """Evaluates `model` on this split; returns the flat dict of Python floats."""
        start = time.perf_counter()
        results = self.summarize(self.ranks(model))
        self.last_seconds = time.perf_counter() - start
        return results


def evaluate(
    model: Recommender, data: MultiBehaviorData, split: str = "test", **evaluator_kwargs
) -> dict[str, float]:
    """One-off evaluation: `Evaluator(data, split, **evaluator_kwargs)(model)`."""
    return Evaluator(data, split, **evaluator_kwargs)(model)
