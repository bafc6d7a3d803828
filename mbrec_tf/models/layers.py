"""Building blocks of the scorers (BPR, GMF/MLP/NeuMF, MBNCF, ...).

- `embedding` and `MLPTower`: tables and towers; `MLPTower.cross` scores a user batch
  against every item without materialising `[user ; item]` for every pair (the first
  layer's kernel is split into a user part and an item part).
- `chunked_user_scores`: full-ranking scores `[B, num_items]` in user chunks, so
  NCF-style models keep their `[chunk, num_items, width]` activations within a budget.
- `mask_gradient`, `example_items`: small helpers of sampled training's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

#: Elements of the largest intermediate `[chunk, num_items, width]` tensor in score_users.
SCORE_BUDGET = 1 << 22


def gaussian(std: float) -> tf.keras.initializers.Initializer:
    return tf.keras.initializers.RandomNormal(stddev=std)


def embedding(
    num: int, dim: int, std: float, name: str, l2: float = 0.0
) -> tf.keras.layers.Embedding:
    """A built embedding table `[num, dim]` initialised from N(0, std^2).

    With `l2` > 0, every lookup adds `l2 · Σ ‖row‖² / batch` to the model's losses (a Keras
    activity regulariser): the per-example penalty on the embeddings a batch uses.
    """
    layer = tf.keras.layers.Embedding(
        num,
        dim,
        embeddings_initializer=gaussian(std),
        activity_regularizer=tf.keras.regularizers.L2(l2) if l2 else None,
        name=name,
    )
    layer.build((None,))
    return layer


def dense(
    units: int,
    input_dim: int,
    name: str,
    activation=None,
    init_std: float | None = None,
    initializer: str = "glorot_uniform",
) -> tf.keras.layers.Dense:
    """A built Dense layer (built now so checkpoints restore into existing variables).

    The kernel is drawn from N(0, init_std^2) when `init_std` is given (a fresh initializer
    per layer, so layers never share initial values), else from `initializer`.
    """
    kernel_initializer = gaussian(init_std) if init_std is not None else initializer
    layer = tf.keras.layers.Dense(
        units, activation=activation, kernel_initializer=kernel_initializer, name=name
    )
    layer.build((None, input_dim))
    return layer


class MLPTower(tf.keras.layers.Layer):
    """ReLU layers of sizes `hidden_layers` on the concatenation `[user ; item]`.

    Kernels are Glorot-uniform, or N(0, init_std^2) when `init_std` is given.
    """

    def __init__(
        self,
        hidden_layers: Sequence[int],
        user_dim: int,
        item_dim: int,
        init_std: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not hidden_layers:
            raise ValueError("an MLP tower needs at least one hidden layer")
        self.user_dim = int(user_dim)
        sizes = [user_dim + item_dim, *hidden_layers]
        self.hidden = [
            dense(units, sizes[i], f"layer_{i}", tf.nn.relu, init_std)
            for i, units in enumerate(hidden_layers)
        ]
        self.built = True

    @property
    def output_dim(self) -> int:
        return self.hidden[-1].units

    @property
    def widest(self) -> int:
        return max(layer.units for layer in self.hidden)

    def call(self, user_vectors: tf.Tensor, item_vectors: tf.Tensor) -> tf.Tensor:
        """`[..., du]` and `[..., dv]` with the same leading shape -> `[..., output_dim]`."""
        x = tf.concat([user_vectors, item_vectors], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        return x

    def item_projection(self, item_vectors: tf.Tensor) -> tf.Tensor:
        """The item half of the first layer, `[N, dv] -> [N, h1]` (bias included)."""
        first = self.hidden[0]
        return tf.matmul(item_vectors, first.kernel[self.user_dim :]) + first.bias

    def cross(self, user_vectors: tf.Tensor, item_projection: tf.Tensor) -> tf.Tensor:
        """Every user with every item: `[c, du]` x `item_projection(items)` -> `[c, N, out]`.

        Equals `call` on every (user, item) pair: the first layer of `[u ; v]` is
        `u W_u + v W_v + b`, so the item half is computed once for all users.
        """
        user_part = tf.matmul(user_vectors, self.hidden[0].kernel[: self.user_dim])
        x = tf.nn.relu(user_part[:, None, :] + item_projection[None, :, :])
        for layer in self.hidden[1:]:
            x = layer(x)
        return x


def chunked_user_scores(
    score_chunk: Callable[[tf.Tensor], tf.Tensor], user_ids: tf.Tensor, chunk_size: int
) -> tf.Tensor:
    """`score_chunk` (`[c] -> [c, N]`) applied to `user_ids` in chunks; returns `[B, N]`.

    Works eagerly and inside `tf.function` (a `map_fn` over padded chunks, one at a time,
    so peak memory is one chunk's activations).
    """
    users = tf.convert_to_tensor(user_ids)
    count = tf.shape(users)[0]
    size = tf.maximum(1, tf.minimum(int(chunk_size), count))
    num_chunks = (count + size - 1) // size
    padded = tf.pad(users, [[0, num_chunks * size - count]])
    scores = tf.map_fn(
        score_chunk,
        tf.reshape(padded, [num_chunks, size]),
        fn_output_signature=tf.TensorSpec([None, None], tf.float32),
        parallel_iterations=1,
    )
    return tf.reshape(scores, [num_chunks * size, -1])[:count]


def chunk_size_for(num_items: int, width: int) -> int:
    """Users per chunk such that a `[chunk, num_items, width]` tensor fits SCORE_BUDGET."""
    return max(1, SCORE_BUDGET // max(1, num_items * width))


def mask_gradient(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`values` unchanged forward; gradient flows only where `mask` is 1."""
    mask = tf.cast(mask, values.dtype)
    return mask * values + (1.0 - mask) * tf.stop_gradient(values)


def example_items(batch: dict) -> tf.Tensor:
    """`[B, 1 + n]` item ids of each sampled example: the positive, then its negatives."""
    return tf.concat([batch["positive"][:, None], batch["negatives"]], axis=1)
