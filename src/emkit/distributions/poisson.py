r"""Poisson components: D independent count columns.

For component :math:`k` with rates :math:`\lambda_{kd}`,

.. math::

    \log p(x \mid z = k) = \sum_d x_d \log\lambda_{kd} - \lambda_{kd} - \log x_d!,

one matrix product with :math:`\log\lambda` plus constants; :math:`\sum_d \log x_d!` is the
same for every component and is computed once per row. The statistics are
:math:`N_{kd} = \sum_n \gamma_{nk}` (over the rows where column :math:`d` is observed) and
:math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}`; the M-step is

.. math::

    \lambda_{kd} = \frac{S_{kd} + \alpha}{N_{kd} + \beta},

the maximum a posteriori estimate under the conjugate :math:`\mathrm{Gamma}(1 + \alpha,
\beta)` prior (shape, rate): :math:`\alpha` events in :math:`\beta` pseudo-observations.
With :math:`\alpha > 0` no rate is zero, so :math:`0 \cdot \log\lambda` never appears;
:math:`\alpha, \beta \to 0` is maximum likelihood, :math:`\lambda = S / N`. Missing cells
(NaN) are marginalised.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from scipy.special import gammaln, kl_div

from emkit._backend import Array, is_torch, namespace
from emkit.distributions.product import ColumnStatistics, IndependentColumns

__all__ = ["Poisson", "PoissonParams", "log_gamma"]


def log_gamma(x: Array) -> Array:
    r""":math:`\log\Gamma(x)` element-wise, in the namespace and on the device of ``x``
    (the array API has no special functions)."""
    if is_torch(x):
        import torch

        return torch.lgamma(x)
    return gammaln(x)


@dataclasses.dataclass(frozen=True)
class PoissonParams:
    """Rates :math:`\\lambda_{kd}`, (K, D), float64."""

    rates: np.ndarray


@dataclasses.dataclass(frozen=True)
class Poisson(IndependentColumns):
    """Family of products of D Poisson distributions.

    Parameters
    ----------
    alpha : float
        Positive pseudo-count of events added to every component and column.
    beta : float
        Positive pseudo-count of observations (the prior's rate); with ``alpha`` it is the
        conjugate Gamma(1 + α, β) prior whose mode is the estimate.
    """

    alpha: float = 1e-6
    beta: float = 1e-6
    support_description: ClassVar[str] = "non-negative integers"

    def support(self, xp, X: Array) -> Array:
        return (X >= 0) & (X == xp.floor(X))

    def base_measure(self, X: Array) -> Array:
        r""":math:`-\sum_d \log x_{nd}!` per row (0 for a missing cell, filled with 0)."""
        return -namespace(X).sum(log_gamma(X + 1.0), axis=1)

    def natural(self, params: PoissonParams) -> np.ndarray:
        r""":math:`\log\lambda`, (K, 1, D)."""
        return np.log(params.rates)[:, None, :]

    def log_partition(self, params: PoissonParams) -> np.ndarray:
        r""":math:`A = \lambda`, (K, D)."""
        return params.rates

    def mean(self, params: PoissonParams) -> np.ndarray:
        """:math:`\\lambda`, (K, D)."""
        return params.rates

    def maximize(self, stats: ColumnStatistics) -> PoissonParams:
        r""":math:`\lambda_{kd} = (S_{kd} + \alpha) / (N_{kd} + \beta)`."""
        return PoissonParams((stats.sums[:, 0, :] + self.alpha) / (stats.counts + self.beta))

    def regularization_gap(self, params: PoissonParams, stats: ColumnStatistics) -> float:
        r"""Loss of Q per sample from the prior, exactly: :math:`\sum_{kd} N_{kd}\,
        \mathrm{KL}(\mathrm{Poi}(\lambda^*_{kd}) \,\|\, \mathrm{Poi}(\lambda_{kd}))
        / \sum_k N_k` with :math:`\lambda^* = S / N`."""
        counts = stats.counts
        best = np.divide(stats.sums[:, 0, :], counts, out=np.zeros_like(counts), where=counts > 0)
        loss = counts * kl_div(best, params.rates)
        return float(loss.sum() / stats.resp_sum.sum())

    def n_parameters(self, params: PoissonParams) -> int:
        """K·D rates."""
        return int(params.rates.size)

    def sample(
        self, params: PoissonParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` rows of counts from each component, in component order."""
        rates = np.repeat(params.rates, np.asarray(counts, dtype=int), axis=0)
        return rng.poisson(rates).astype(np.float64)
