"""NCF (He et al. 2017): GMF, MLP and their fusion NeuMF, as modes of one model.

- GMF:   score = w_g . (p_u ⊙ q_v) + b  (factorised: query [p_u ⊙ w_g ; 1], items [q_v ; b]).
- MLP:   score = w_m . MLP([p'_u ; q'_v]) + b, ReLU layers `hidden_layers`.
- NeuMF: score = w . [p_u ⊙ q_v ; MLP([p'_u ; q'_v])] + b, separate GMF and MLP embeddings.
Trained by the sampled task, pointwise log-loss on 4 uniform negatives per positive by default.
NeuMF can start from trained GMF and MLP runs (`pretrained_gmf`, `pretrained_mlp`): their
embeddings and tower are copied, the prediction layer is alpha/(1 - alpha) of theirs.
`embedding_dim` is unused here: `mf_dim` and `mlp_dim` size the two embeddings.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import ExampleBatch, ScoreOutputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import layers
from mbrec_tf.models.base import Recommender

GMF, MLP, NEUMF = "gmf", "mlp", "neumf"
MODES = (GMF, MLP, NEUMF)


@dataclasses.dataclass(frozen=True)
class NCFConfig(config_lib.SampledConfig):
    """Hyper-parameters of gmf, mlp and neumf (He et al.'s defaults)."""

    num_negatives: int = config_lib.field(4, "Negatives drawn per positive pair.")
    loss: str = config_lib.field(
        "pointwise", "pointwise (binary log-loss, NCF's) or pairwise (softplus(s_neg - s_pos))."
    )
    mf_dim: int = config_lib.field(8, "Size of the GMF embeddings (gmf, neumf).")
    mlp_dim: int = config_lib.field(32, "Size of the MLP embeddings, per side (mlp, neumf).")
    hidden_layers: tuple[int, ...] = config_lib.field(
        (32, 16, 8), "Sizes of the ReLU layers of the MLP tower (mlp, neumf)."
    )
    pretrained_gmf: str = config_lib.field(
        "", "NeuMF: model_dir (or checkpoint) of a trained gmf run to initialise from."
    )
    pretrained_mlp: str = config_lib.field(
        "", "NeuMF: model_dir (or checkpoint) of a trained mlp run to initialise from."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        config_lib.check_layers(self.hidden_layers)
        if self.mf_dim < 1 or self.mlp_dim < 1:
            raise ValueError(f"mf_dim and mlp_dim must be >= 1, got {self.mf_dim}, {self.mlp_dim}")
        if bool(self.pretrained_gmf) != bool(self.pretrained_mlp):
            raise ValueError("pretrained_gmf and pretrained_mlp must be given together")


#: Per-dataset defaults of each mode, picked on the validation split (sampled NDCG@10);
#: see BENCHMARKS.md. The sparse taobao_ub4 purchases overfit after about 2 epochs.
_TUNED = {"batch_size": 256, "learning_rate": 0.002}
DATASET_DEFAULTS = {
    GMF: {"taobao_ub4": {**_TUNED, "epochs": 10}, "beibei": {**_TUNED, "epochs": 5}},
    MLP: {"taobao_ub4": {**_TUNED, "epochs": 2}, "beibei": {**_TUNED, "epochs": 5}},
    NEUMF: {"taobao_ub4": {**_TUNED, "epochs": 2}, "beibei": {**_TUNED, "epochs": 2}},
}


class NCF(Recommender):
    """GMF, MLP or NeuMF depending on `mode`; `embedding_l2` penalises a batch's embeddings."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        mode: str = NEUMF,
        *,
        mf_dim: int = 8,
        mlp_dim: int = 32,
        hidden_layers: tuple[int, ...] = (32, 16, 8),
        init_std: float = 0.01,
        embedding_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(num_users, num_items, **kwargs)
        if mode not in MODES:
            raise ValueError(f"NCF mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.mf_dim = int(mf_dim) if mode != MLP else 0
        width = self.mf_dim
        if self.uses_gmf:
            l2 = float(embedding_l2)
            self.gmf_user, self.gmf_item = layers.user_item_tables(
                num_users, num_items, mf_dim, init_std, "gmf", l2
            )
        if self.uses_mlp:
            l2 = float(embedding_l2)
            self.mlp_user, self.mlp_item = layers.user_item_tables(
                num_users, num_items, mlp_dim, init_std, "mlp", l2
            )
            self.mlp_tower = layers.MLPTower(hidden_layers, mlp_dim, mlp_dim, name="mlp_tower")
            width += self.mlp_tower.output_dim
        self.prediction = layers.dense(1, width, "prediction", initializer="lecun_uniform")

    @property
    def uses_gmf(self) -> bool:
        return self.mode in (GMF, NEUMF)

    @property
    def uses_mlp(self) -> bool:
        return self.mode in (MLP, NEUMF)

    @property
    def is_factorized(self) -> bool:
        return self.mode == GMF

    # --- scoring -------------------------------------------------------------------------------
    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        item_ids = tf.convert_to_tensor(item_ids)
        parts = []
        if self.uses_gmf:
            users, items = self.gmf_user(user_ids), self.gmf_item(item_ids)
            parts.append(_align(users, items) * items)
        if self.uses_mlp:
            users, items = self.mlp_user(user_ids), self.mlp_item(item_ids)
            users = tf.broadcast_to(_align(users, items), tf.shape(items))
            parts.append(self.mlp_tower(users, items))
        return tf.squeeze(self.prediction(tf.concat(parts, axis=-1)), axis=-1)

    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        if self.is_factorized:
            return super().score_users(user_ids)
        weights, bias = self.prediction.kernel[:, 0], self.prediction.bias[0]
        item_projection = self.mlp_tower.item_projection(self.mlp_item.embeddings)

        def chunk_scores(users: tf.Tensor) -> tf.Tensor:
            hidden = self.mlp_tower.cross(self.mlp_user(users), item_projection)
            scores = tf.tensordot(hidden, weights[self.mf_dim :], axes=1)
            if self.uses_gmf:
                query = self.gmf_user(users) * weights[: self.mf_dim]
                scores += tf.matmul(query, self.gmf_item.embeddings, transpose_b=True)
            return scores + bias

        chunk = layers.chunk_size_for(self.num_items, self.mlp_tower.widest)
        return layers.chunked_user_scores(chunk_scores, user_ids, chunk)

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        if not self.is_factorized:
            raise NotImplementedError(f"{self.mode} is not a factorised model")
        users = self.gmf_user(user_ids) * self.prediction.kernel[:, 0]
        return tf.concat([users, tf.ones_like(users[:, :1])], axis=1)

    def item_embeddings(self) -> tf.Tensor:
        if not self.is_factorized:
            raise NotImplementedError(f"{self.mode} is not a factorised model")
        items = tf.convert_to_tensor(self.gmf_item.embeddings)
        bias = tf.fill([self.num_items, 1], self.prediction.bias[0])
        return tf.concat([items, bias], axis=1)

    def call(self, batch: ExampleBatch, training: bool = False) -> ScoreOutputs:
        """Logits `[B, 1 + n]` of each example's positive (column 0) and negatives."""
        del training
        return {"scores": self.score_pairs(batch["user"], layers.example_items(batch))}

    # --- NeuMF pre-training --------------------------------------------------------------------
    def load_pretrained(self, gmf: NCF, mlp: NCF, alpha: float = 0.5) -> None:
        """Initialises a NeuMF model from trained GMF and MLP models (He et al., sec. 3.4.1)."""
        if self.mode != NEUMF or gmf.mode != GMF or mlp.mode != MLP:
            raise ValueError("load_pretrained needs a neumf model, a gmf model and an mlp model")
        pairs = [
            (self.gmf_user, gmf.gmf_user),
            (self.gmf_item, gmf.gmf_item),
            (self.mlp_user, mlp.mlp_user),
            (self.mlp_item, mlp.mlp_item),
            (self.mlp_tower, mlp.mlp_tower),
        ]
        for target, source in pairs:
            target.set_weights(source.get_weights())
        gmf_kernel, gmf_bias = gmf.prediction.get_weights()
        mlp_kernel, mlp_bias = mlp.prediction.get_weights()
        self.prediction.set_weights(
            [
                tf.concat([alpha * gmf_kernel, (1 - alpha) * mlp_kernel], axis=0).numpy(),
                alpha * gmf_bias + (1 - alpha) * mlp_bias,
            ]
        )


def _align(users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
    """User vectors `[B, d]` shaped to broadcast against items `[B, d]` or `[B, n, d]`."""
    return users[:, None, :] if items.shape.rank == 3 else users


def checkpoint_path(path: str) -> str:
    """The checkpoint prefix for a run directory, its checkpoints/ folder, or a prefix."""
    for folder in (path, os.path.join(path, "checkpoints")):
        if tf.io.gfile.isdir(folder):
            latest = tf.train.latest_checkpoint(folder)
            if latest:
                return latest
    if tf.io.gfile.exists(f"{path}.index"):
        return path
    raise FileNotFoundError(f"no checkpoint found at {path!r} (nor under {path}/checkpoints)")


def restore_weights(model: NCF, path: str) -> None:
    """Restores `model` from a training checkpoint saved as `tf.train.Checkpoint(model=...)`."""
    status = tf.train.Checkpoint(model=model).restore(checkpoint_path(path)).expect_partial()
    status.assert_existing_objects_matched()


def build(data: MultiBehaviorData, config: NCFConfig, mode: str = NEUMF) -> NCF:
    """An NCF model in `mode`; a NeuMF one starts from pre-trained runs when configured."""

    def make(model_mode: str) -> NCF:
        return NCF(
            data.num_users,
            data.num_items,
            model_mode,
            mf_dim=config.mf_dim,
            mlp_dim=config.mlp_dim,
            hidden_layers=config.hidden_layers,
            init_std=config.init_std,
            embedding_l2=config.embedding_l2,
        )

    model = make(mode)
    if mode == NEUMF and config.pretrained_gmf:
        gmf, mlp = make(GMF), make(MLP)
        restore_weights(gmf, config.pretrained_gmf)
        restore_weights(mlp, config.pretrained_mlp)
        model.load_pretrained(gmf, mlp)
    return model
