"""Sampled examples, the input of the sampled task: (user, positive, negatives[, masks]).

Every training pair (u, v) of the positive behaviors (the target by default) becomes one
example with `num_negatives` negatives drawn by a named sampler (`mbrec_tf.sampling`).
Epoch e is a pure function of `(seed, e)`: its order is a stateless shuffle, and each chunk
of batches draws its negatives in NumPy from a generator seeded by `(seed, e, chunk)`, so the
first batch is ready at once and `prefetch` overlaps drawing with training. The epoch
number is a counter inside the tf.data graph, advanced by every new iteration (Keras `fit`
iterates a finite dataset once per epoch); no Python object keeps epoch state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from mbrec_tf import contracts
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.data.keys import contains, matrix_pairs, pair_keys
from mbrec_tf.inputs.user_batches import epoch_numbers, replica_batches
from mbrec_tf.sampling import NegativeSampler


class SampledExamples:
    """Per-epoch batches of positive training pairs with freshly sampled negatives.

    A batch is a `contracts.ExampleBatch`: "positive_behavior" (index in
    `positive_behaviors`) when there is more than one positive behavior, and, when
    `mask_behaviors` is given, "behavior_mask": 1.0 where the user has that behavior with
    the positive (column 0) or a negative (columns 1..n) in the training data.
    """

    def __init__(
        self,
        data: MultiBehaviorData,
        sampler: NegativeSampler,
        num_negatives: int,
        batch_size: int,
        *,
        positive_behaviors: Sequence[str] | None = None,
        mask_behaviors: Sequence[str] = (),
        seed: int = 0,
        shuffle: bool = True,
        chunk_batches: int = 32,
    ):
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        positive_behaviors = tuple(positive_behaviors or (data.target,))
        unknown = [b for b in (*positive_behaviors, *mask_behaviors) if b not in data.train]
        if unknown:
            raise ValueError(f"unknown mask behaviors {unknown}; the data has {data.behaviors}")
        self.sampler = sampler
        self.num_negatives = int(num_negatives)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.chunk_size = self.batch_size * max(1, int(chunk_batches))
        self.num_items = data.num_items
        self.positive_behaviors = positive_behaviors
        pairs = [matrix_pairs(data.train[b]) for b in positive_behaviors]
        self.users = np.concatenate([users for users, _ in pairs])
        self.positives = np.concatenate([items for _, items in pairs])
        self.behavior_index = np.concatenate(
            [np.full(len(users), k, dtype=np.int32) for k, (users, _) in enumerate(pairs)]
        )
        self.mask_behaviors = tuple(mask_behaviors)
        self._mask_keys = {b: pair_keys(data.train[b]) for b in self.mask_behaviors}

    @property
    def num_examples(self) -> int:
        return int(len(self.users))

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_examples // self.batch_size)

    @property
    def num_chunks(self) -> int:
        return -(-self.num_examples // self.chunk_size)

    def order(self, epoch: int | tf.Tensor) -> tf.Tensor:
        """The example order of `epoch`: a stateless shuffle seeded by `(seed, epoch)`.

        Pure TensorFlow, so the tf.data pipeline and `epoch()` draw the same order.
        """
        indices = tf.range(self.num_examples, dtype=tf.int64)
        if not self.shuffle:
            return indices
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
        return tf.random.experimental.stateless_shuffle(indices, seed=seed)

    def chunk(self, epoch: int, chunk: int, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The examples `indices` (chunk `chunk` of `epoch`'s order) with their negatives."""
        rng = np.random.default_rng([self.seed, int(epoch), int(chunk)])
        users, positives = self.users[indices], self.positives[indices]
        negatives = self.sampler.sample(users, self.num_negatives, rng, positives=positives)
        columns = {
            "user": users.astype(np.int32),
            "positive": positives.astype(np.int32),
            "negatives": np.asarray(negatives, dtype=np.int32),
        }
        if len(self.positive_behaviors) > 1:
            columns["positive_behavior"] = self.behavior_index[indices]
        if self.mask_behaviors:
            items = np.concatenate([positives[:, None], negatives], axis=1)
            columns["behavior_mask"] = {
                behavior: contains(keys, users[:, None], items, self.num_items).astype(np.float32)
                for behavior, keys in self._mask_keys.items()
            }
        return columns

    def epoch(self, epoch: int) -> Iterator[dict]:
        """The batches of epoch `epoch` as NumPy dicts (deterministic in `(seed, epoch)`)."""
        order = self.order(epoch).numpy()
        for c in range(self.num_chunks):
            columns = self.chunk(epoch, c, order[c * self.chunk_size : (c + 1) * self.chunk_size])
            for low in range(0, len(columns["user"]), self.batch_size):
                yield tf.nest.map_structure(lambda v, s=low: v[s : s + self.batch_size], columns)

    def output_signature(self) -> dict:
        """The `tf.TensorSpec` structure of one batch (`contracts.example_batch_spec`)."""
        return contracts.example_batch_spec(
            self.num_negatives,
            behavior_indices=len(self.positive_behaviors) > 1,
            mask_behaviors=self.mask_behaviors,
        )

    def dataset(
        self,
        start_epoch: int = 0,
        input_context: tf.distribute.InputContext | None = None,
        repeat: bool = False,
    ) -> tf.data.Dataset:
        """A tf.data dataset of one epoch; each new iteration draws the next epoch.

        Epoch numbers start at `start_epoch`. With an `input_context`, each input pipeline
        draws every chunk (the same examples and negatives as one process) and yields its
        replicas' shares of each global batch (`replica_batches`). The cardinality is
        declared so progress bars know it. With `repeat`, every epoch after the other,
        endlessly, with no state in the dataset (`epoch_numbers`).
        """
        batch_size = self.batch_size
        signature = self.output_signature()
        flat_specs = tf.nest.flatten(signature)
        num_examples, chunk_size = self.num_examples, self.chunk_size

        def chunks(epoch: tf.Tensor) -> tf.data.Dataset:
            order = self.order(epoch)
            starts = tf.range(0, num_examples, chunk_size, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices(
                (tf.fill(tf.shape(starts), epoch), tf.range(tf.size(starts), dtype=tf.int64))
            ).map(lambda e, c: (e, c, order[c * chunk_size : (c + 1) * chunk_size]))

        def draw(epoch: tf.Tensor, chunk: tf.Tensor, indices: tf.Tensor) -> dict:
            def numpy_chunk(e, c, ix):
                columns = self.chunk(int(e), int(c), ix)
                return tf.nest.flatten(columns)

            flat = tf.numpy_function(
                numpy_chunk, [epoch, chunk, indices], [spec.dtype for spec in flat_specs]
            )
            for tensor, spec in zip(flat, flat_specs, strict=True):
                tensor.set_shape(spec.shape)
            return tf.nest.pack_sequence_as(signature, flat)

        def split(columns: dict) -> tf.data.Dataset:
            size = tf.shape(columns["user"], out_type=tf.int64)[0]
            return tf.data.Dataset.range(0, size, batch_size).map(
                lambda low: tf.nest.map_structure(lambda v: v[low : low + batch_size], columns)
            )

        dataset = epoch_numbers(repeat, start_epoch).flat_map(chunks).map(draw).flat_map(split)
        if not repeat:
            steps = sum(
                -(-min(chunk_size, num_examples - start) // batch_size)
                for start in range(0, num_examples, chunk_size)
            )
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
        dataset = replica_batches(dataset, input_context)
        return dataset.prefetch(tf.data.AUTOTUNE)


def sampled_examples(
    data: MultiBehaviorData,
    config,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    *,
    repeat: bool = False,
) -> tf.data.Dataset:
    """One epoch of a sampled model's training batches, re-drawn on every iteration
    (with `repeat`, every epoch after the other, endlessly).

    Reads the config's sampler (`config.make_sampler`), `num_negatives`, `batch_size`, the
    positive behaviors
    (`config.positive_behaviors(data.behaviors)`) and whether batches carry masks of the
    supportive behaviors (`config.behavior_masks`).
    """
    examples = SampledExamples(
        data,
        config.make_sampler(data),
        config.num_negatives,
        config.batch_size,
        positive_behaviors=config.positive_behaviors(tuple(data.behaviors)),
        mask_behaviors=data.supportive_behaviors if config.behavior_masks else (),
        seed=seed,
    )
    return examples.dataset(input_context=input_context, repeat=repeat)
