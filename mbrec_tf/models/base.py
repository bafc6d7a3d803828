"""The Recommender interface that evaluation, export and serving depend on, and the one
training step every model shares.

A model (a *scorer*) holds parameters and scoring only. Its Keras `call(batch, training)`
returns what its task needs (per-behavior prediction inputs for whole-data models, the
logits of each example's items for sampled ones); the task attached by `compile` turns
them into a loss. `train_step` / `test_step` are defined here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf


def dot_pairs(queries: tf.Tensor, item_vectors: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
    """`queries[b] · item_vectors[item_ids[b]]`, for `item_ids` `[batch]` or `[batch, n]`."""
    items = tf.gather(item_vectors, item_ids)
    if items.shape.rank == 3:
        return tf.einsum("bd,bnd->bn", queries, items)
    return tf.reduce_sum(queries * items, axis=-1)


class Recommender(tf.keras.Model):
    """A tf-keras model that scores the target behavior for users and (user, item) pairs.

    Subclasses implement `score_users` and `score_pairs`; factorised models (whose target
    score is a dot product `query · item`) also implement `query_embeddings` and
    `item_embeddings`, which lets evaluation and export use one matrix product and a TFRS
    retrieval layer. Trainable models implement `call(batch, training)`: the forward pass
    their task consumes. A model never parses flags, reads files or computes metrics.
    """

    def __init__(self, num_users: int, num_items: int, **kwargs):
        super().__init__(**kwargs)
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.task = None
        self._trackers: list[tf.keras.metrics.Mean] = []

    # --- scoring ---------------------------------------------------------------------------
    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        """Target-behavior scores of every item, `[batch, num_items]`, for int `user_ids`."""
        if self.is_factorized:
            queries = self.query_embeddings(user_ids)
            return tf.matmul(queries, self.item_embeddings(), transpose_b=True)
        raise NotImplementedError

    def selection_scorer(self) -> Recommender:
        """The scorer whose validation ranking selects the epoch: the model itself, unless a
        fixed ranking rule on top of its trained part would hide how that part learns."""
        return self

    def scoring_tables(self) -> tuple[tf.Tensor, ...]:
        """Tensors scoring derives from the parameters as a whole (graph-propagated
        embeddings, the item half of a first layer), computed once per evaluation or export
        and passed to the `*_given` methods instead of once per user batch (none by default)."""
        return ()

    def score_users_given(self, user_ids: tf.Tensor, tables: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """`score_users` with `scoring_tables()` computed beforehand."""
        if self.is_factorized and self._has_tables:
            queries = self.query_embeddings_given(user_ids, tables)
            return tf.matmul(queries, self.item_embeddings_given(tables), transpose_b=True)
        return self.score_users(user_ids)

    def query_embeddings_given(
        self, user_ids: tf.Tensor, tables: tuple[tf.Tensor, ...]
    ) -> tf.Tensor:
        """`query_embeddings` with `scoring_tables()` computed beforehand."""
        del tables
        return self.query_embeddings(user_ids)

    def item_embeddings_given(self, tables: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """`item_embeddings` with `scoring_tables()` computed beforehand."""
        del tables
        return self.item_embeddings()

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        """Target-behavior scores of given pairs; `item_ids` is `[batch]` or `[batch, n]`."""
        if self.is_factorized:
            return dot_pairs(self.query_embeddings(user_ids), self.item_embeddings(), item_ids)
        raise NotImplementedError

    def score_pairs_given(
        self, user_ids: tf.Tensor, item_ids: tf.Tensor, tables: tuple[tf.Tensor, ...]
    ) -> tf.Tensor:
        """`score_pairs` with `scoring_tables()` computed beforehand."""
        if self.is_factorized and self._has_tables:
            queries = self.query_embeddings_given(user_ids, tables)
            return dot_pairs(queries, self.item_embeddings_given(tables), item_ids)
        return self.score_pairs(user_ids, item_ids)

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        """`[batch, d]` query vectors such that scores are `query · item_embeddings()`."""
        raise NotImplementedError(f"{type(self).__name__} is not a factorised model")

    def item_embeddings(self) -> tf.Tensor:
        """`[num_items, d]` item vectors matching `query_embeddings`."""
        raise NotImplementedError(f"{type(self).__name__} is not a factorised model")

    @property
    def _has_tables(self) -> bool:
        """True when the subclass computes scoring tables (else the plain methods score)."""
        return type(self).scoring_tables is not Recommender.scoring_tables

    @property
    def is_factorized(self) -> bool:
        """True when the subclass overrides `query_embeddings` and `item_embeddings`."""
        cls = type(self)
        return (
            cls.query_embeddings is not Recommender.query_embeddings
            and cls.item_embeddings is not Recommender.item_embeddings
        )

    def call(self, batch: Mapping[str, Any], training: bool = False) -> Any:
        """The forward pass of a training batch, in the form this model's task consumes."""
        raise NotImplementedError(f"{type(self).__name__} has no training forward pass")

    # --- training ----------------------------------------------------------------------------
    def compile(self, optimizer="adam", task=None, **kwargs) -> None:
        """Keras `compile` plus the task whose loss `train_step` minimises."""
        super().compile(optimizer=optimizer, **kwargs)
        self.task = task
        names = ("loss", *task.loss_names) if task is not None else ()
        self._trackers = [tf.keras.metrics.Mean(name=name) for name in names]

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        return list(self._trackers)

    def batch_loss(
        self, batch: Mapping[str, Any], training: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
        """(task loss, Σ `self.losses`, named parts) of a batch: one scorer and one task call.

        `self.losses` holds the regularisers of the forward pass just made (weight
        penalties, per-batch embedding penalties).
        """
        if self.task is None:
            raise ValueError(f"{type(self).__name__} has no task: compile(task=...) first")
        return self._task_loss(batch, self(batch, training=training), training)

    def _task_loss(
        self, batch: Mapping[str, Any], outputs: Any, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
        """`batch_loss` of the scorer's `outputs`."""
        step = self.optimizer.iterations if training and self.optimizer is not None else None
        task_loss, parts = self.task(batch, outputs, training=training, step=step)
        regularization = tf.add_n(self.losses) if self.losses else tf.zeros_like(task_loss)
        return task_loss, regularization, parts

    def train_step(self, batch: Any) -> dict[str, tf.Tensor]:
        """One gradient step on the task loss plus regularisers, replica-aware.

        Under a `tf.distribute` strategy each replica sees its share of the global batch and
        the replicas' gradients are summed. A sum-reduced task loss (additive over the
        batch) is used as it is and the regularisers (which do not grow with the batch) are
        divided by the number of replicas R. A mean-reduced task loss and its regularisers
        are weighted by the replica's share of the global batch's examples, n_r · R / N
        over R: the replicas' means then add up to the global batch's mean, also for an
        uneven last batch (a replica without examples contributes nothing). With several
        replicas in sync the step sums `exchanged_gradients` itself (a whole-data task's
        item Grams as `[d, d]` matrices, not the item table's dense gradient).
        """
        batch, _, _ = tf.keras.utils.unpack_x_y_sample_weight(batch)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            return self._synchronous_train_step(batch, replicas)
        with tf.GradientTape() as tape:
            task_loss, regularization, parts = self.batch_loss(batch, training=True)
            scaled, logged = self._replica_objective(
                batch, replicas, task_loss, regularization, parts
            )
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(
            (g, v) for g, v in zip(gradients, variables, strict=True) if g is not None
        )
        return self._track(*logged, replicas)

    def _replica_objective(
        self,
        batch: Mapping[str, Any],
        replicas: int,
        task_loss: tf.Tensor,
        regularization: tf.Tensor,
        parts: Mapping[str, tf.Tensor],
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor, Mapping[str, tf.Tensor]]]:
        """(what this replica differentiates, the (task loss, penalties, parts) it logs)."""
        if self.task.sums_over_batch:
            return task_loss + regularization / replicas, (task_loss, regularization, parts)
        share = self._example_share(batch, replicas)
        task_loss, regularization, parts = (
            tf.nest.map_structure(lambda value: _weighted(value, share), item)
            for item in (task_loss, regularization, parts)
        )
        return (task_loss + regularization) / replicas, (task_loss, regularization, parts)

    def exchanged_gradients(
        self, batch: Mapping[str, Any], replicas: int = 1
    ) -> tuple[list[Any], Callable[[list[Any]], list[tuple[Any, tf.Variable]]], tuple]:
        """What a synchronous step sums over the replicas for one replica's `batch`.

        Returns (the tensors to all-reduce, a function from their sums to the (gradient,
        variable) pairs to apply, the (task loss, penalties, parts) to log). Without
        replicated terms in the task (`Task.replicated_terms`) they are the variables'
        gradients, as the optimizer would all-reduce them. With them, they are the terms'
        gradients (a whole-data task's `[d, d]` item Grams), the dense gradients of tables
        (rank 2, more rows than columns) as their nonzero rows (`IndexedSlices`: the
        batch's users, the positives' items), and the other gradients as they are; from
        the sums every replica back-propagates the terms' gradients to the variables
        alike (the item table's dense Gram gradient), with nothing of size |V| exchanged.
        """
        with tf.GradientTape(persistent=True) as tape:
            outputs = self(batch, training=True)
            terms = self.task.replicated_terms(outputs)
            term_tensors = tf.nest.flatten(terms)
            tape.watch(term_tensors)
            task_loss, regularization, parts = self._task_loss(
                batch, {**outputs, **terms}, training=True
            )
            scaled, logged = self._replica_objective(
                batch, replicas, task_loss, regularization, parts
            )
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, [*variables, *term_tensors])
        variable_gradients = gradients[: len(variables)]
        if term_tensors:
            variable_gradients = [_nonzero_rows(g) for g in variable_gradients]
        present = [i for i, g in enumerate(variable_gradients) if g is not None]
        exchanged = [variable_gradients[i] for i in present] + gradients[len(variables) :]

        def gradient_pairs(sums: list[Any]) -> list[tuple[Any, tf.Variable]]:
            summed = dict(zip(present, sums[: len(present)], strict=True))
            if term_tensors:
                term_sums = tf.nest.pack_sequence_as(terms, sums[len(present) :])
                upstream = self.task.replicated_terms_gradients(outputs, term_sums)
                names = sorted(upstream)
                local = tape.gradient(
                    [outputs[name] for name in names],
                    variables,
                    output_gradients=[upstream[name] for name in names],
                )
                for i, gradient in enumerate(local):
                    if gradient is not None:
                        summed[i] = _add(summed[i], gradient) if i in summed else gradient
            return [(summed[i], variables[i]) for i in sorted(summed)]

        return exchanged, gradient_pairs, logged

    def _synchronous_train_step(
        self, batch: Mapping[str, Any], replicas: int
    ) -> dict[str, tf.Tensor]:
        """The step of several replicas in sync: all-reduces `exchanged_gradients`' tensors
        itself, then applies the gradients without the optimizer's own all-reduce."""
        exchanged, gradient_pairs, logged = self.exchanged_gradients(batch, replicas)
        context = tf.distribute.get_replica_context()
        sums = context.all_reduce(tf.distribute.ReduceOp.SUM, exchanged)
        pairs = gradient_pairs(sums)
        if isinstance(self.optimizer, tf.keras.optimizers.legacy.Optimizer):
            self.optimizer.apply_gradients(pairs, experimental_aggregate_gradients=False)
        else:
            self.optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)
        return self._track(*logged, replicas)

    @staticmethod
    def _example_share(batch: Mapping[str, Any], replicas: int) -> tf.Tensor:
        """n_r · R / N: this replica's examples relative to an even split of the batch."""
        examples = tf.cast(tf.shape(batch["user"])[0], tf.float32)
        if replicas == 1:
            return tf.ones([])
        total = tf.distribute.get_replica_context().all_reduce("sum", examples)
        return examples * replicas / total

    def test_step(self, batch: Any) -> dict[str, tf.Tensor]:
        batch, _, _ = tf.keras.utils.unpack_x_y_sample_weight(batch)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return self._track(*self.batch_loss(batch, training=False), replicas)

    def _track(
        self,
        task_loss: tf.Tensor,
        regularization: tf.Tensor,
        parts: Mapping[str, tf.Tensor],
        replicas: int,
    ) -> dict[str, tf.Tensor]:
        """Logs the objective of the global batch: the mean of the replicas' values of
        `task loss × replicas` (sum-reduced) or `task loss` (mean-reduced), plus penalties."""
        factor = replicas if self.task.sums_over_batch else 1
        values = {"loss": task_loss * factor + regularization}
        values.update({name: value * factor for name, value in parts.items()})
        for tracker in self._trackers:
            tracker.update_state(values[tracker.name])
        return {tracker.name: tracker.result() for tracker in self._trackers}


def _nonzero_rows(gradient: Any) -> Any:
    """A table's dense gradient (rank 2, more rows than columns) as its nonzero rows."""
    if not isinstance(gradient, tf.Tensor) or gradient.shape.rank != 2:
        return gradient
    rows, columns = gradient.shape
    if rows is None or columns is None or rows <= columns:
        return gradient
    indices = tf.cast(tf.where(tf.reduce_any(tf.not_equal(gradient, 0), axis=1))[:, 0], tf.int32)
    return tf.IndexedSlices(tf.gather(gradient, indices), indices, tf.shape(gradient))


def _add(total: Any, dense: tf.Tensor) -> tf.Tensor:
    """`total` (a tensor or `IndexedSlices`) plus a dense tensor of the same shape."""
    if isinstance(total, tf.IndexedSlices):
        return tf.tensor_scatter_nd_add(dense, total.indices[:, None], total.values)
    return total + dense


def _weighted(value: tf.Tensor, share: tf.Tensor) -> tf.Tensor:
    """`share · value`, and 0 for a replica without examples (whose mean is undefined)."""
    share = tf.cast(share, value.dtype)
    return tf.where(share > 0, share * value, tf.zeros_like(value))
