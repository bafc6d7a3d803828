"""Building blocks of the scorers (BPR, GMF/MLP/NeuMF, MBNCF, ...).

- `embedding`, `user_item_tables` and `MLPTower`: tables and towers (`neumf_pair_inputs`
  looks up the GMF and MLP inputs of pairs); `MLPTower.cross` scores a user batch against
  every item without materialising `[user ; item]` for every pair (the first layer's
  kernel is split into a user part and an item part).
- `chunked_user_scores`: full-ranking scores `[B, num_items]` in user chunks, so
  NCF-style models keep their `[chunk, num_items, width]` activations within a budget.
- `StackedTowers` and `tiled_user_scores`: several towers (MBNCF's branches) as one wider
  tower with block-diagonal kernels, scored over (user chunk, item tile) blocks small enough
  to stay in cache: the fast full-ranking path of the MLP models.
- `mask_gradient`, `example_items`: small helpers of sampled training's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from mbrec_tf.contracts import ExampleBatch

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


def user_item_tables(
    num_users: int, num_items: int, dim: int, std: float, prefix: str, l2: float = 0.0
) -> tuple[tf.keras.layers.Embedding, tf.keras.layers.Embedding]:
    """The user and item `embedding` tables `<prefix>_user`, `<prefix>_item` of one width."""
    return (
        embedding(num_users, dim, std, f"{prefix}_user", l2),
        embedding(num_items, dim, std, f"{prefix}_item", l2),
    )


def neumf_tables(
    num_users: int,
    num_items: int,
    gmf_dim: int,
    mlp_dim: int,
    std: float,
    l2: float = 0.0,
    gmf_prefix: str = "gmf",
) -> tuple[tf.keras.layers.Embedding, ...]:
    """GMF then MLP user and item tables (`<gmf_prefix>_user`, ..., `mlp_item`), in that order."""
    gmf = user_item_tables(num_users, num_items, gmf_dim, std, gmf_prefix, l2)
    return (*gmf, *user_item_tables(num_users, num_items, mlp_dim, std, "mlp", l2))


def neumf_pair_inputs(
    gmf_tables: tuple[tf.keras.layers.Embedding, tf.keras.layers.Embedding],
    mlp_tables: tuple[tf.keras.layers.Embedding, tf.keras.layers.Embedding],
    user_ids: tf.Tensor,
    item_ids: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The GMF product u ⊙ v and the MLP user and item vectors of (user, item) pairs.

    `item_ids` is `[B]` or `[B, n]`; the MLP user vectors are broadcast to the items' shape,
    as the towers take `[user ; item]` pairs.
    """
    item_ids = tf.convert_to_tensor(item_ids)
    gmf_users, gmf_items = gmf_tables[0](user_ids), gmf_tables[1](item_ids)
    mlp_users, mlp_items = mlp_tables[0](user_ids), mlp_tables[1](item_ids)
    if item_ids.shape.rank == 2:
        gmf_users, mlp_users = gmf_users[:, None, :], mlp_users[:, None, :]
    mlp_users = tf.broadcast_to(mlp_users, tf.shape(mlp_items))
    return gmf_users * gmf_items, mlp_users, mlp_items


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


class StackedTowers:
    """Towers of equal depth applied to the same `[user ; item]` input, as one tower.

    The first layers' user and item halves are concatenated along their outputs, so one
    product gives every tower's first layer; each deeper layer is one product with a
    block-diagonal kernel (tower t's kernel in block t). The output is the concatenation
    of the towers' outputs, in order. Kernels are read from the towers' variables on every
    call, so the stack follows training.
    """

    def __init__(self, towers: Sequence[MLPTower]):
        if not towers or len({len(t.hidden) for t in towers}) != 1:
            raise ValueError("StackedTowers needs one or more towers of the same depth")
        self.towers = list(towers)

    @property
    def first_width(self) -> int:
        return sum(t.hidden[0].units for t in self.towers)

    @property
    def widest(self) -> int:
        depth = len(self.towers[0].hidden)
        return max(sum(t.hidden[i].units for t in self.towers) for i in range(depth))

    def item_side(self, item_vectors: tf.Tensor) -> tf.Tensor:
        """Every tower's first-layer item half with its bias, `[N, dv] -> [N, first_width]`."""
        return tf.concat([t.item_projection(item_vectors) for t in self.towers], axis=-1)

    def user_side(self, user_vectors: tf.Tensor) -> tf.Tensor:
        """Every tower's first-layer user half, `[c, du] -> [c, first_width]`."""
        return tf.concat(
            [tf.matmul(user_vectors, t.hidden[0].kernel[: t.user_dim]) for t in self.towers],
            axis=-1,
        )

    def deeper_layers(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """(block-diagonal kernel, concatenated bias) of each layer after the first."""
        stacked = []
        for index in range(1, len(self.towers[0].hidden)):
            layers_ = [t.hidden[index] for t in self.towers]
            stacked.append(
                (
                    block_diagonal([layer.kernel for layer in layers_]),
                    tf.concat([layer.bias for layer in layers_], axis=0),
                )
            )
        return stacked

    @staticmethod
    def cross(
        user_side: tf.Tensor,
        item_side: tf.Tensor,
        deeper: Sequence[tuple[tf.Tensor, tf.Tensor]],
    ) -> tf.Tensor:
        """Every user with every item: `[c, H]` x `[t, H]` -> `[c * t, output width]`, rows
        user-major; equals each tower's `call` on every pair, outputs concatenated."""
        x = tf.nn.relu(user_side[:, None, :] + item_side[None, :, :])
        x = tf.reshape(x, [-1, item_side.shape[-1]])
        for kernel, bias in deeper:
            x = tf.nn.relu(tf.matmul(x, kernel) + bias)
        return x


def block_diagonal(blocks: Sequence[tf.Tensor]) -> tf.Tensor:
    """The block-diagonal matrix of 2-D `blocks` (zeros elsewhere)."""
    rows = [int(b.shape[0]) for b in blocks]
    columns = [int(b.shape[1]) for b in blocks]
    padded = [
        tf.pad(block, [[0, 0], [sum(columns[:i]), sum(columns[i + 1 :])]])
        for i, block in enumerate(blocks)
    ]
    matrix = tf.concat(padded, axis=0)
    matrix.set_shape([sum(rows), sum(columns)])
    return matrix


#: Elements of the largest `[users × items, width]` activation of one block in
#: `tiled_user_scores`: small enough to stay in
#: cache between layers (8 MiB).
TILE_BUDGET = 1 << 21
#: Items per tile in `tiled_user_scores` (the users per block follow from TILE_BUDGET).
ITEM_TILE = 1024


def tiled_user_scores(
    score_block: Callable[..., tf.Tensor],
    user_ids: tf.Tensor,
    item_sides: Sequence[tf.Tensor],
    width: int,
) -> tf.Tensor:
    """Full-ranking scores `[B, N]` computed block by block.

    `item_sides` are per-item tensors `[N, ...]` computed once by the caller;
    `score_block(users [c], *item_side_tiles [t, ...]) -> [c, t]` scores one block of
    users against one tile of items, its widest activation `[c * t, width]`. Users come in
    chunks and items in tiles such that a block holds about `TILE_BUDGET` activations, so
    the layers of a block run in cache instead of streaming `[c, N, width]` through memory.
    """
    num_items = int(item_sides[0].shape[0])
    tile = max(1, min(ITEM_TILE, num_items))
    num_tiles = -(-num_items // tile)
    tiles = [
        tf.reshape(
            tf.pad(side, [[0, num_tiles * tile - num_items]] + [[0, 0]] * (side.shape.rank - 1)),
            [num_tiles, tile, *side.shape[1:]],
        )
        for side in item_sides
    ]

    def chunk_scores(users: tf.Tensor) -> tf.Tensor:
        per_tile = tf.map_fn(
            lambda parts: score_block(users, *parts),
            tuple(tiles),
            fn_output_signature=tf.TensorSpec([None, tile], tf.float32),
            parallel_iterations=1,
        )  # [num_tiles, c, tile]
        scores = tf.reshape(tf.transpose(per_tile, [1, 0, 2]), [tf.shape(users)[0], -1])
        return scores[:, :num_items]

    users_per_block = max(1, TILE_BUDGET // max(1, tile * int(width)))
    return chunked_user_scores(chunk_scores, user_ids, users_per_block)


def chunk_size_for(num_items: int, width: int) -> int:
    """Users per chunk such that a `[chunk, num_items, width]` tensor fits SCORE_BUDGET."""
    return max(1, SCORE_BUDGET // max(1, num_items * width))


def mask_gradient(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`values` unchanged forward; gradient flows only where `mask` is 1."""
    mask = tf.cast(mask, values.dtype)
    return mask * values + (1.0 - mask) * tf.stop_gradient(values)


def example_items(batch: ExampleBatch) -> tf.Tensor:
    """`[B, 1 + n]` item ids of each sampled example: the positive, then its negatives."""
    return tf.concat([batch["positive"][:, None], batch["negatives"]], axis=1)
