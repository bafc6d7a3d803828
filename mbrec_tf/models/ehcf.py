"""EHCF: Efficient Heterogeneous Collaborative Filtering (Chen et al., AAAI 2020).

MODELS.md §1. Shared user and item embeddings P, Q; one prediction vector h_k per behavior,
R̂_k(u, v) = h_kᵀ (p_u ⊙ q_v). h of the first behavior is free; every later one is
transferred from its predecessors in a behavior DAG, h_k = Σ_{t ∈ prec(k)} (M_tk h_t + r_tk),
with ℓ2 on the M. The objective is the whole-data task (`mbrec_tf.tasks.whole_data`): the
exact weighted regression of every behavior over every item, combined with λ_k.

Ranking uses the target behavior: query = p_u ⊙ h_K, item vector = q_v, so evaluation and
export take the Recommender interface's matrix-product path.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import FactorOutputs, UserBatch
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender


@dataclasses.dataclass(frozen=True)
class EHCFConfig(config_lib.FactorDropoutConfig):
    """EHCF hyper-parameters; the defaults are the authors' published settings."""

    transfer_dag: tuple[str, ...] = config_lib.field(
        (),
        "Transfer edges 'from>to' (e.g. view>cart,view>buy,cart>buy); edges of absent "
        "behaviors are ignored. Empty = every earlier behavior precedes each later one.",
    )
    transfer_l2: float = config_lib.field(
        1e-4, "l2 coefficient on the transfer matrices (times sum of ||M||^2 / 2)."
    )
    no_transfer: bool = config_lib.field(False, "Ablation: every h_k is a free parameter.")
    behaviors: tuple[str, ...] = config_lib.field(
        (), "Data ablation: train on these behaviors only (the target last). Empty = all."
    )


class EHCF(Recommender):
    """The EHCF scorer: P, Q and the transferred prediction vectors h_k.

    `call(batch, training)` returns the whole-data task's inputs: the batch users' p_u
    (with dropout in training), Q and the `[K, d]` stack of h_k.

    Args:
      num_users, num_items: table sizes.
      behaviors: behavior names, the target last.
      embedding_dim: d.
      predecessors: per behavior, the indices of earlier behaviors it is transferred from;
        an empty entry makes h_k free (always the case for the first behavior).
      keep_prob: dropout keep probability of user embeddings in training.
      transfer_l2: coefficient of Σ ‖M‖² / 2 (a weight regulariser: in `self.losses`).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        behaviors: Sequence[str],
        *,
        embedding_dim: int = 64,
        predecessors: Sequence[Sequence[int]] | None = None,
        keep_prob: float = 0.5,
        transfer_l2: float = 1e-4,
        **kwargs,
    ):
        super().__init__(num_users=num_users, num_items=num_items, **kwargs)
        self.behaviors = tuple(behaviors)
        num_behaviors = len(self.behaviors)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
        self.embedding_dim = int(embedding_dim)
        self.keep_prob = float(keep_prob)
        self.transfer_l2 = float(transfer_l2)
        if predecessors is None:
            predecessors = [list(range(k)) for k in range(num_behaviors)]
        self.predecessors = tuple(tuple(int(t) for t in preds) for preds in predecessors)
        _check_predecessors(self.predecessors, num_behaviors)

        d = self.embedding_dim
        bound = math.sqrt(3.0 / d)

        # A fresh initializer per variable: one unseeded instance repeats its values.
        def embedding_init() -> tf.keras.initializers.Initializer:
            return tf.keras.initializers.TruncatedNormal(stddev=0.01)

        def vector_init() -> tf.keras.initializers.Initializer:
            return tf.keras.initializers.RandomUniform(-bound, bound)

        def matrix_penalty(matrix: tf.Variable) -> tf.Tensor:
            return self.transfer_l2 * tf.nn.l2_loss(matrix)  # transfer_l2 · ‖M‖² / 2

        self.user_table = self.add_weight(
            name="user_embeddings", shape=(self.num_users, d), initializer=embedding_init()
        )
        self.item_table = self.add_weight(
            name="item_embeddings", shape=(self.num_items, d), initializer=embedding_init()
        )
        self.free_vectors = {}
        self.transfers = []
        for k, behavior in enumerate(self.behaviors):
            if not self.predecessors[k]:
                self.free_vectors[behavior] = self.add_weight(
                    name=f"h_{behavior}", shape=(d,), initializer=vector_init()
                )
            for t in self.predecessors[k]:
                source = self.behaviors[t]
                matrix = self.add_weight(
                    name=f"transfer_{source}_to_{behavior}",
                    shape=(d, d),
                    initializer=vector_init(),
                    regularizer=matrix_penalty if self.transfer_l2 else None,
                )
                bias = self.add_weight(
                    name=f"transfer_bias_{source}_to_{behavior}",
                    shape=(d,),
                    initializer=vector_init(),
                )
                self.transfers.append((matrix, bias))

    def prediction_vectors(self) -> list[tf.Tensor]:
        """h_k of every behavior, in behavior order (transferred ones computed on the fly)."""
        vectors: list[tf.Tensor] = []
        transfers = iter(self.transfers)
        for k, behavior in enumerate(self.behaviors):
            if not self.predecessors[k]:
                vectors.append(tf.convert_to_tensor(self.free_vectors[behavior]))
                continue
            terms = []
            for t in self.predecessors[k]:
                matrix, bias = next(transfers)
                terms.append(tf.linalg.matvec(matrix, vectors[t]) + bias)
            vectors.append(tf.add_n(terms))
        return vectors

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.nn.embedding_lookup(self.user_table, user_ids) * self.prediction_vectors()[-1]

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_table)

    def call(self, batch: UserBatch, training: bool = False) -> FactorOutputs:
        """The whole-data task's inputs for a user batch (dropout on p_u when training)."""
        user_vectors = tf.nn.embedding_lookup(self.user_table, batch["user"])
        if training and self.keep_prob < 1.0:
            user_vectors = tf.nn.dropout(user_vectors, rate=1.0 - self.keep_prob)
        return {
            "user_vectors": user_vectors,
            "item_vectors": tf.convert_to_tensor(self.item_table),
            "prediction_vectors": tf.stack(self.prediction_vectors()),
        }


def transfer_predecessors(
    behaviors: Sequence[str], dag: Sequence[str] = (), no_transfer: bool = False
) -> list[list[int]]:
    """prec(k) per behavior from 'from>to' edges (default: every earlier behavior).

    Edges must go from an earlier to a later behavior (the order is a topological order, so
    the graph is acyclic); edges that name a behavior absent from `behaviors` are dropped.
    A behavior with no incoming edge has a free h.
    """
    behaviors = list(behaviors)
    if no_transfer:
        return [[] for _ in behaviors]
    edges = [e.strip() for e in dag if e.strip()]
    if not edges:
        return [list(range(k)) for k in range(len(behaviors))]
    predecessors: list[list[int]] = [[] for _ in behaviors]
    for edge in edges:
        if edge.count(">") != 1:
            raise ValueError(f"transfer_dag edge {edge!r} is not of the form 'from>to'")
        source, target = (part.strip() for part in edge.split(">"))
        if source not in behaviors or target not in behaviors:
            continue
        t, k = behaviors.index(source), behaviors.index(target)
        if t >= k:
            raise ValueError(
                f"transfer_dag edge {edge!r} must go from an earlier to a later behavior "
                f"in {tuple(behaviors)}"
            )
        if t not in predecessors[k]:
            predecessors[k].append(t)
    return [sorted(p) for p in predecessors]


def _check_predecessors(predecessors: Sequence[Sequence[int]], num_behaviors: int) -> None:
    if len(predecessors) != num_behaviors:
        raise ValueError(f"{len(predecessors)} predecessor lists for {num_behaviors} behaviors")
    for k, preds in enumerate(predecessors):
        if any(not 0 <= t < k for t in preds):
            raise ValueError(f"behavior {k} can only be transferred from earlier ones: {preds}")


def training_data(data: MultiBehaviorData, config: EHCFConfig) -> MultiBehaviorData:
    """`ehcf`'s data: restricted to `config.behaviors` (all behaviors when empty)."""
    return data.with_behaviors(config.behaviors) if config.behaviors else data


def ehcf_arguments(data: MultiBehaviorData, config: EHCFConfig) -> dict[str, Any]:
    """`EHCF`'s constructor arguments for `data` and `config` (its subclasses add theirs)."""
    behaviors = data.behaviors
    return {
        "num_users": data.num_users,
        "num_items": data.num_items,
        "behaviors": behaviors,
        "embedding_dim": config.embedding_dim,
        "predecessors": transfer_predecessors(behaviors, config.transfer_dag, config.no_transfer),
        "keep_prob": config.keep_prob,
        "transfer_l2": config.transfer_l2,
    }


def build(data: MultiBehaviorData, config: EHCFConfig) -> EHCF:
    """An EHCF over every behavior of `data` (already restricted by `training_data`)."""
    return EHCF(**ehcf_arguments(data, config))


#: Settings per dataset: the published ones (MODELS.md §1) unless BENCHMARKS.md says why.
#: λ and w are given per behavior name and cover view, cart and buy; behaviors absent from a
#: copy are dropped and λ renormalised, so Beibei's (view 0.05, cart 0.8, buy 0.15) becomes
#: (cart 0.84, buy 0.16) on the public cart + buy copy: the λ of the authors' own cart + buy
#: run (their code lists one coefficient per behavior slot, the supportive one first).
#: Beibei: keep 0.8 instead of the published 0.5 (better on every validation metric, see
#: BENCHMARKS.md), and 200 epochs (validation NDCG@10 plateaus from about epoch 150).
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    "beibei": {
        "epochs": 200,
        "keep_prob": 0.8,
        "negative_weight": ("0.1",),
        "loss_coefficients": ("view:0.05", "cart:0.8", "buy:0.15"),
    },
    "taobao": {
        "negative_weight": ("0.01",),
        "loss_coefficients": ("view:1", "cart:4", "buy:1"),
    },
}
