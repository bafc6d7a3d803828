"""CMF: collective matrix factorisation of every behavior with shared P and Q.

MODELS.md §3. Every behavior k is factorised as R̂_k(u, v) = p_uᵀ q_v with the same user and
item embeddings (no per-behavior vectors, no transfer): the whole-data task over all
behaviors with h_k = 1, each behavior's loss weighted by λ_k (`--loss_coefficients`) and its
missing entries by c⁻_k (`--negative_weight`). Ranking is p_u · q_v. The scorer is WMF's.
"""

from __future__ import annotations

import dataclasses

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.wmf import SharedFactorConfig, SharedFactorMF
from mbrec_tf.models.wmf import build as build_shared


@dataclasses.dataclass(frozen=True)
class CMFConfig(SharedFactorConfig):
    """CMF: the whole-data regression of every behavior with shared factors."""


def build(data: MultiBehaviorData, config: CMFConfig, **kwargs) -> SharedFactorMF:
    """Shared P and Q for every behavior of `data`."""
    return build_shared(data, config, **kwargs)


#: Beibei: 200 epochs as EHCF; λ chosen on validation (BENCHMARKS.md).
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    "beibei": {"epochs": 200},
}
