"""ExpoMF's EM (Liang et al. 2016): exposure posteriors, weighted ridge solves, μ per item.

The model: item v is exposed to user u with probability μ_v (a per-item, popularity-like
prior with a Beta(a, b) prior of its own), a_uv ~ Bernoulli(μ_v); a clicked entry is
exposed, and given exposure y_uv ~ N(θ_uᵀβ_v, 1/λ_y); θ_u ~ N(0, I/λ_θ), β_v ~ N(0, I/λ_β).
EM maximises the log posterior with the exposures marginalised,

    L = Σ_{y=1} [log μ_v + log N(1 | s_uv)] + Σ_{y=0} log(μ_v N(0 | s_uv) + 1 − μ_v)
        − λ_θ/2 ‖Θ‖² − λ_β/2 ‖B‖² + Σ_v [(a − 1) log μ_v + (b − 1) log(1 − μ_v)],

s_uv = θ_uᵀβ_v. One iteration is two EM steps, each an E-step (the posterior p_uv of a_uv:
1 where y = 1, else μ_v N(0|s) / (μ_v N(0|s) + 1 − μ_v)) then the exact maximiser of the
expected complete log posterior in some parameters: first every θ_u, then every β_v and μ_v,

    θ_u = (λ_y Σ_v p_uv β_v β_vᵀ + λ_θ I)⁻¹ λ_y Σ_v y_uv β_v   (β_v likewise over users),
    μ_v = (a − 1 + Σ_u p_uv) / (a + b − 2 + |U|),

so L never decreases. Everything runs over blocks of `block_size` users: a block's `[B, |V|]`
scores and posteriors are the largest arrays; the item step accumulates its sufficient
statistics (`[|V|, d, d]`) block by block, so no `|U| × |V|` array is ever held.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy import special

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks.base import ClosedFormTask

#: μ stays inside (0, 1) by this margin (log μ and log(1 − μ) stay finite).
_MU_MARGIN = 1e-10


@dataclasses.dataclass(frozen=True)
class ExposureSettings:
    """EM hyper-parameters: precisions, the Beta prior of μ, blocks, iterations."""

    user_l2: float = 0.01  # λ_θ
    item_l2: float = 0.01  # λ_β
    click_precision: float = 1.0  # λ_y
    prior_a: float = 1.0
    prior_b: float = 1.0
    block_size: int = 1024
    iterations: int = 10


@dataclasses.dataclass
class ExposureFactors:
    """The fitted parameters: Θ `[|U|, d]`, B `[|V|, d]`, μ `[|V|]`."""

    users: np.ndarray
    items: np.ndarray
    exposure: np.ndarray


def popularity_exposure(clicks: sp.csr_matrix, prior_a: float, prior_b: float) -> np.ndarray:
    """Initial μ_v from item popularity: the Beta(a, b) posterior mean of exposure given
    the clicks alone, (a + n_v) / (a + b + |U|), n_v the item's number of users."""
    counts = np.asarray((clicks > 0).sum(axis=0), dtype=np.float64).ravel()
    return (prior_a + counts) / (prior_a + prior_b + clicks.shape[0])


def user_blocks(num_users: int, block_size: int) -> Iterator[slice]:
    """Consecutive slices of at most `block_size` users."""
    for start in range(0, num_users, block_size):
        yield slice(start, min(start + block_size, num_users))


def _log_normal_zero(scores: np.ndarray, precision: float) -> np.ndarray:
    """log N(0 | s, 1/λ_y)."""
    return 0.5 * math.log(precision / (2.0 * math.pi)) - 0.5 * precision * np.square(scores)


def exposure_posteriors(
    scores: np.ndarray, clicks: np.ndarray, exposure: np.ndarray, precision: float
) -> np.ndarray:
    """p(a_uv = 1 | y, θ, β, μ) of a block: 1 on clicks, else μ N(0|s) / (μ N(0|s) + 1 − μ)."""
    logit = np.log(exposure) - np.log1p(-exposure) + _log_normal_zero(scores, precision)
    posteriors = special.expit(logit).astype(scores.dtype, copy=False)
    posteriors[clicks > 0] = 1.0
    return posteriors


def _outer_rows(matrix: np.ndarray) -> np.ndarray:
    """`[n, d·d]` flattened outer products x xᵀ of the rows of `[n, d]` `matrix`."""
    return (matrix[:, :, None] * matrix[:, None, :]).reshape(len(matrix), -1)


def _ridge_solve(grams: np.ndarray, targets: np.ndarray, l2: float) -> np.ndarray:
    """Rows x_i = (G_i + l2 I)⁻¹ t_i for `[n, d, d]` grams and `[n, d]` targets."""
    dim = grams.shape[-1]
    systems = grams + l2 * np.eye(dim, dtype=grams.dtype)
    return np.linalg.solve(systems, targets[..., None])[..., 0]


def update_users(
    clicks: sp.csr_matrix, factors: ExposureFactors, settings: ExposureSettings
) -> None:
    """E-step with the current parameters, then θ_u = argmax of the expected log posterior."""
    items = factors.items
    dim = items.shape[1]
    item_outer = _outer_rows(items)
    for block in user_blocks(clicks.shape[0], settings.block_size):
        block_clicks = clicks[block].toarray().astype(items.dtype)
        scores = factors.users[block] @ items.T
        posteriors = exposure_posteriors(
            scores, block_clicks, factors.exposure, settings.click_precision
        )
        grams = settings.click_precision * (posteriors @ item_outer).reshape(-1, dim, dim)
        targets = settings.click_precision * (block_clicks @ items)
        factors.users[block] = _ridge_solve(grams, targets, settings.user_l2)


def update_items_and_exposure(
    clicks: sp.csr_matrix, factors: ExposureFactors, settings: ExposureSettings
) -> None:
    """E-step with the current parameters, then β_v and μ_v, statistics summed by block."""
    users, items = factors.users, factors.items
    num_items, dim = items.shape
    grams = np.zeros((num_items, dim * dim), dtype=items.dtype)
    targets = np.zeros((num_items, dim), dtype=items.dtype)
    exposed = np.zeros(num_items, dtype=np.float64)
    for block in user_blocks(clicks.shape[0], settings.block_size):
        block_clicks = clicks[block].toarray().astype(items.dtype)
        block_users = users[block]
        posteriors = exposure_posteriors(
            block_users @ items.T, block_clicks, factors.exposure, settings.click_precision
        )
        grams += posteriors.T @ _outer_rows(block_users)
        targets += block_clicks.T @ block_users
        exposed += posteriors.sum(axis=0, dtype=np.float64)
    precision = settings.click_precision
    factors.items[:] = _ridge_solve(
        precision * grams.reshape(num_items, dim, dim), precision * targets, settings.item_l2
    )
    exposure = (settings.prior_a - 1.0 + exposed) / (
        settings.prior_a + settings.prior_b - 2.0 + clicks.shape[0]
    )
    factors.exposure[:] = np.clip(exposure, _MU_MARGIN, 1.0 - _MU_MARGIN)


def log_posterior(
    clicks: sp.csr_matrix, factors: ExposureFactors, settings: ExposureSettings
) -> float:
    """L: the log posterior with exposures marginalised (up to a constant), by block."""
    users, items, mu = factors.users, factors.items, factors.exposure
    precision = settings.click_precision
    log_mu, log_not_mu = np.log(mu), np.log1p(-mu)
    total = 0.0
    for block in user_blocks(clicks.shape[0], settings.block_size):
        block_clicks = clicks[block].toarray() > 0
        scores = (users[block] @ items.T).astype(np.float64)
        clicked = log_mu + 0.5 * math.log(precision / (2.0 * math.pi))
        clicked = clicked - 0.5 * precision * np.square(1.0 - scores)
        unclicked = np.logaddexp(log_mu + _log_normal_zero(scores, precision), log_not_mu)
        total += float(np.where(block_clicks, clicked, unclicked).sum())
    total -= 0.5 * settings.user_l2 * float(np.sum(np.square(users, dtype=np.float64)))
    total -= 0.5 * settings.item_l2 * float(np.sum(np.square(items, dtype=np.float64)))
    total += float(
        np.sum((settings.prior_a - 1.0) * log_mu + (settings.prior_b - 1.0) * log_not_mu)
    )
    return total


def fit_exposure_mf(
    clicks: sp.csr_matrix,
    factors: ExposureFactors,
    settings: ExposureSettings,
    track_objective: bool = False,
) -> list[float]:
    """Runs `settings.iterations` EM iterations on `factors` in place.

    Returns L before the first iteration and after each one when `track_objective` (an
    extra pass over the blocks per iteration), else an empty list.
    """
    clicks = sp.csr_matrix(clicks)
    objective = [log_posterior(clicks, factors, settings)] if track_objective else []
    for iteration in range(settings.iterations):
        update_users(clicks, factors, settings)
        update_items_and_exposure(clicks, factors, settings)
        if track_objective:
            objective.append(log_posterior(clicks, factors, settings))
            logging.info("ExpoMF EM iteration %d: log posterior %.6g", iteration + 1, objective[-1])
        else:
            logging.info("ExpoMF EM iteration %d done", iteration + 1)
    return objective


class ExpoMFFit(ClosedFormTask):
    """ExpoMF's EM from seeded Gaussian factors and popularity exposure priors."""

    def __init__(self, settings: ExposureSettings, init_std: float, seed: int | None = None):
        self.settings = settings
        self.init_std = float(init_std)
        self.seed = seed
        self.objective: list[float] = []

    def initial_factors(self, clicks: sp.csr_matrix, dim: int, dtype) -> ExposureFactors:
        """Θ, B ~ N(0, init_std²) (seeded) and μ from item popularity."""
        rng = np.random.default_rng(self.seed)
        num_users, num_items = clicks.shape
        return ExposureFactors(
            users=(self.init_std * rng.standard_normal((num_users, dim))).astype(dtype),
            items=(self.init_std * rng.standard_normal((num_items, dim))).astype(dtype),
            exposure=popularity_exposure(clicks, self.settings.prior_a, self.settings.prior_b),
        )

    def fit(self, model, data: MultiBehaviorData, track_objective: bool = False) -> None:
        clicks = data.target_train
        dtype = np.dtype(model.user_table.dtype.as_numpy_dtype)
        factors = self.initial_factors(clicks, int(model.user_table.shape[1]), dtype)
        self.objective = fit_exposure_mf(clicks, factors, self.settings, track_objective)
        model.set_factors(factors.users, factors.items, factors.exposure)


def expomf_fit(data: MultiBehaviorData, config) -> ExpoMFFit:
    """The registry's task builder for ExpoMF (seeded by the run's global seed)."""
    del data
    settings = ExposureSettings(
        user_l2=config.user_l2,
        item_l2=config.item_l2,
        click_precision=config.click_precision,
        prior_a=config.exposure_prior_a,
        prior_b=config.exposure_prior_b,
        block_size=config.block_size,
        iterations=config.epochs,
    )
    return ExpoMFFit(settings, config.init_std, seed=int(np.random.randint(2**31 - 1)))
