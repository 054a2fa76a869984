r"""Multinomial components: each row is a vector of counts over D categories.

For component :math:`k` with probabilities :math:`\theta_{kd}` (:math:`\sum_d \theta_{kd} =
1`) and a row of counts :math:`x` with total :math:`m = \sum_d x_d`,

.. math::

    \log p(x \mid z = k) = \log m! - \sum_d \log x_d! + \sum_d x_d \log\theta_{kd},

one matrix product with :math:`\log\theta` plus the multinomial coefficient, which is the
same for every component and computed once per row (the number of trials is conditioned on,
not modelled). The statistics are :math:`N_k = \sum_n \gamma_{nk}` and
:math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}`; the M-step is

.. math::

    \theta_{kd} = \frac{S_{kd} + \alpha}{\sum_{d'} S_{kd'} + D\alpha},

the maximum a posteriori estimate under a symmetric :math:`\mathrm{Dirichlet}(1 + \alpha)`
prior; :math:`\alpha \to 0` is maximum likelihood. A count vector with some entries missing
has no closed-form marginal (its total is unknown), so missing values are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.special import rel_entr

from emkit._backend import Array, as_backend, namespace
from emkit.distributions._base import Statistics
from emkit.distributions.poisson import log_gamma
from emkit.distributions.product import check_support, replace_component

__all__ = ["Multinomial", "MultinomialParams", "MultinomialStatistics"]


@dataclasses.dataclass(frozen=True)
class MultinomialParams:
    """Probabilities :math:`\\theta_{kd}` (K, D) and the mean number of trials per row of
    each component (K,), which only :meth:`Multinomial.sample` uses."""

    probabilities: np.ndarray
    trials: np.ndarray


@dataclasses.dataclass(frozen=True)
class MultinomialStatistics(Statistics):
    r""":math:`N_k = \sum_n \gamma_{nk}` (K,), :math:`S_{kd} = \sum_n \gamma_{nk}
    x_{nd}` (K, D) and the weighted log multinomial coefficients (K,), which only the value
    of Q needs."""

    resp_sum: Array
    sums: Array
    coefficient: Array


@dataclasses.dataclass(frozen=True)
class MultinomialCoefficients:
    """Log-probabilities (D, K) and the bias (K,)."""

    log_probabilities: Array
    bias: Array


@dataclasses.dataclass(frozen=True)
class MultinomialChunk:
    """The counts (n, D) and the log multinomial coefficients (n,)."""

    counts: Array
    coefficient: Array


@dataclasses.dataclass(frozen=True)
class Multinomial:
    """Family of multinomial distributions over the D columns.

    Parameters
    ----------
    alpha : float
        Positive pseudo-count added to every category of every component (MAP under a
        Dirichlet(1 + α) prior), so that no probability is zero.
    """

    alpha: float = 1e-6
    location = False

    def prepare(
        self, params: MultinomialParams, like: Array, bias: np.ndarray | None = None
    ) -> MultinomialCoefficients:
        r""":math:`\log\theta` (D, K) in the dtype of ``like``."""
        n_components = params.probabilities.shape[0]
        bias = np.zeros(n_components) if bias is None else bias
        return MultinomialCoefficients(
            as_backend(np.ascontiguousarray(np.log(params.probabilities).T), like),
            as_backend(bias, like),
        )

    def features(self, X: Array, prepared: MultinomialCoefficients | None) -> MultinomialChunk:
        r"""The counts and :math:`\log m! - \sum_d \log x_d!` per row."""
        xp = namespace(X)
        coefficient = log_gamma(xp.sum(X, axis=1) + 1.0) - xp.sum(log_gamma(X + 1.0), axis=1)
        return MultinomialChunk(X, coefficient)

    def log_prob(self, chunk: MultinomialChunk, prepared: MultinomialCoefficients) -> Array:
        r""":math:`x_n^\top \log\theta_k` + coefficient + bias, (n, K)."""
        return (
            chunk.counts @ prepared.log_probabilities
            + chunk.coefficient[:, None]
            + prepared.bias[None, :]
        )

    def statistics(self, chunk: MultinomialChunk, resp: Array) -> MultinomialStatistics:
        r""":math:`N_k`, :math:`S_{kd}` and the weighted coefficients."""
        return MultinomialStatistics(
            namespace(resp).sum(resp, axis=0), resp.T @ chunk.counts, chunk.coefficient @ resp
        )

    def expected_log_likelihood(
        self, params: MultinomialParams, stats: MultinomialStatistics
    ) -> float:
        r""":math:`Q = \sum_{kd} S_{kd}\log\theta_{kd}` plus the weighted coefficients."""
        return float((stats.sums * np.log(params.probabilities)).sum() + stats.coefficient.sum())

    def maximize(self, stats: MultinomialStatistics) -> MultinomialParams:
        r""":math:`\theta_{kd} = (S_{kd} + \alpha) / (\sum_{d'} S_{kd'} + D\alpha)`."""
        counts = stats.sums + self.alpha
        totals = stats.sums.sum(axis=1)
        trials = totals / np.maximum(stats.resp_sum, np.finfo(np.float64).tiny)
        return MultinomialParams(counts / counts.sum(axis=1, keepdims=True), trials)

    def regularization_gap(
        self, params: MultinomialParams, stats: MultinomialStatistics
    ) -> float:
        r"""Loss of Q per sample from the pseudo-counts, exactly: :math:`\sum_k M_k
        \mathrm{KL}(\theta^*_k \,\|\, \theta_k) / \sum_k N_k` with :math:`M_k = \sum_d S_{kd}`
        and :math:`\theta^*_k = S_k / M_k`."""
        totals = stats.sums.sum(axis=1, keepdims=True)
        best = np.divide(stats.sums, totals, out=np.zeros_like(stats.sums), where=totals > 0)
        loss = totals * rel_entr(best, params.probabilities)
        return float(loss.sum() / stats.resp_sum.sum())

    def reseed(
        self, params: MultinomialParams, stats: MultinomialStatistics, component: int,
        point: np.ndarray,
    ) -> MultinomialParams:
        """Restart an empty component from the counts of ``point`` plus one average sample."""
        average = stats.sums.sum(axis=0) / stats.resp_sum.sum()
        seed = MultinomialStatistics(np.array([2.0]), (point + average)[None, :], np.zeros(1))
        return replace_component(params, component, self.maximize(seed))

    def n_parameters(self, params: MultinomialParams) -> int:
        """K · (D − 1) free probabilities."""
        n_components, n_categories = params.probabilities.shape
        return int(n_components * (n_categories - 1))

    def sample(
        self, params: MultinomialParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` rows from each component, each with the component's mean number of
        trials (rounded), in component order."""
        draws = [
            rng.multinomial(round(trials), probabilities, size=int(count))
            for probabilities, trials, count in zip(
                params.probabilities, params.trials, counts, strict=True
            )
        ]
        return np.vstack(draws).astype(np.float64)

    def validate(self, X: Array, labels: Sequence[str]) -> None:
        """Refuse anything but non-negative integer counts, naming column and row."""
        check_support(
            X, lambda xp, x: (x >= 0) & (x == xp.floor(x)), "non-negative integer counts",
            labels, "Multinomial", allow_nan=False,
            nan_reason="a count vector with missing cells has an unknown total, so its marginal "
            "has no closed form and this family does not marginalise missing values",
        )

