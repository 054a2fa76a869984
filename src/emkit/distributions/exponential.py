r"""Exponential components: D independent non-negative columns.

For component :math:`k` with rates :math:`\lambda_{kd}`,

.. math::

    \log p(x \mid z = k) = \sum_d \log\lambda_{kd} - \lambda_{kd} x_d,

one matrix product with :math:`-\lambda` plus a constant per component. The statistics are
:math:`N_{kd} = \sum_n \gamma_{nk}` (over the rows where column :math:`d` is observed) and
:math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}`; the M-step is

.. math::

    \lambda_{kd} = \frac{N_{kd} + \alpha}{S_{kd} + \beta},

the maximum a posteriori estimate under the conjugate :math:`\mathrm{Gamma}(1 + \alpha,
\beta)` prior on the rate (:math:`\alpha` pseudo-observations with total :math:`\beta`), which
stays finite when a component's values are all zero. :math:`\alpha, \beta \to 0` is maximum
likelihood, :math:`\lambda = N / S`. Missing cells (NaN) are marginalised.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from emkit._backend import Array
from emkit.distributions.product import ColumnStatistics, IndependentColumns

__all__ = ["Exponential", "ExponentialParams"]


@dataclasses.dataclass(frozen=True)
class ExponentialParams:
    """Rates :math:`\\lambda_{kd}` (inverse means), (K, D), float64."""

    rates: np.ndarray


@dataclasses.dataclass(frozen=True)
class Exponential(IndependentColumns):
    """Family of products of D exponential distributions.

    Parameters
    ----------
    alpha : float
        Non-negative pseudo-count of observations added to every component and column.
    beta : float
        Positive total of those pseudo-observations (the prior's rate).
    """

    alpha: float = 1e-6
    beta: float = 1e-6
    support_description: ClassVar[str] = "non-negative numbers"

    def support(self, xp, X: Array) -> Array:
        return X >= 0

    def natural(self, params: ExponentialParams) -> np.ndarray:
        r""":math:`-\lambda`, (K, 1, D)."""
        return -params.rates[:, None, :]

    def log_partition(self, params: ExponentialParams) -> np.ndarray:
        r""":math:`A = -\log\lambda`, (K, D)."""
        return -np.log(params.rates)

    def mean(self, params: ExponentialParams) -> np.ndarray:
        """:math:`1 / \\lambda`, (K, D)."""
        return 1.0 / params.rates

    def maximize(self, stats: ColumnStatistics) -> ExponentialParams:
        r""":math:`\lambda_{kd} = (N_{kd} + \alpha) / (S_{kd} + \beta)`."""
        return ExponentialParams((stats.counts + self.alpha) / (stats.sums[:, 0, :] + self.beta))

    def regularization_gap(self, params: ExponentialParams, stats: ColumnStatistics) -> float:
        r"""Loss of Q per sample from the prior, exactly: with :math:`r = \lambda S / N`
        (the rate over the maximiser :math:`N / S`), :math:`\sum_{kd} N_{kd}
        (r - 1 - \log r) / \sum_k N_k`; infinite when a component's values are all zero
        (the likelihood is then unbounded)."""
        counts, sums = stats.counts, stats.sums[:, 0, :]
        used = counts > 0
        if (used & (sums <= 0)).any():
            return np.inf
        ratio = np.divide(params.rates * sums, counts, out=np.ones_like(counts), where=used)
        loss = counts * (ratio - 1.0 - np.log(ratio))
        return float(loss.sum() / stats.resp_sum.sum())

    def n_parameters(self, params: ExponentialParams) -> int:
        """K·D rates."""
        return int(params.rates.size)

    def sample(
        self, params: ExponentialParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` rows from each component, in component order."""
        rates = np.repeat(params.rates, np.asarray(counts, dtype=int), axis=0)
        return rng.exponential(size=rates.shape) / rates
