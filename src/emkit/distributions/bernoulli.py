r"""Multivariate Bernoulli components: D independent binary columns.

For component :math:`k` with means :math:`\theta_{kd} = p(x_d = 1 \mid z = k)`,

.. math::

    \log p(x \mid z = k) = \sum_d x_d \log\theta_{kd} + (1 - x_d)\log(1 - \theta_{kd})
      = x^\top \operatorname{logit}\theta_k + \sum_d \log(1 - \theta_{kd}),

so the log-densities of a chunk for all components are one matrix product with the
log-odds plus a constant per component (Bishop 2006, §9.3.3). The statistics are
:math:`N_{kd} = \sum_n \gamma_{nk}` (over the rows where column :math:`d` is observed) and
:math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}`; the M-step is

.. math::

    \theta_{kd} = \frac{S_{kd} + \alpha}{N_{kd} + 2\alpha},

the maximum a posteriori estimate under a :math:`\mathrm{Beta}(1 + \alpha, 1 + \alpha)`
prior: :math:`\alpha` successes and :math:`\alpha` failures added to every component, which
keeps :math:`\theta` strictly inside (0, 1) so that every log is finite. :math:`\alpha \to 0`
is maximum likelihood (:math:`\theta = S / N`, Bishop eq. 9.59). A missing cell (NaN) is
marginalised: it contributes to neither sum.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from scipy.special import rel_entr

from emkit._backend import Array
from emkit.distributions.product import ColumnStatistics, IndependentColumns

__all__ = ["Bernoulli", "BernoulliParams"]


@dataclasses.dataclass(frozen=True)
class BernoulliParams:
    """Means :math:`\\theta_{kd} = p(x_d = 1 \\mid z = k)`, (K, D), float64."""

    means: np.ndarray


@dataclasses.dataclass(frozen=True)
class Bernoulli(IndependentColumns):
    """Family of products of D Bernoulli distributions.

    Parameters
    ----------
    alpha : float
        Positive pseudo-count: :math:`\\alpha` ones and :math:`\\alpha` zeros are added to
        every component and column (MAP under a Beta(1 + α, 1 + α) prior), so no mean
        reaches 0 or 1.
    """

    alpha: float = 1e-6
    support_description: ClassVar[str] = "0 or 1"

    def support(self, xp, X: Array) -> Array:
        return (X == 0) | (X == 1)

    def natural(self, params: BernoulliParams) -> np.ndarray:
        r"""Log-odds :math:`\log\theta - \log(1 - \theta)`, (K, 1, D)."""
        theta = params.means
        return (np.log(theta) - np.log1p(-theta))[:, None, :]

    def log_partition(self, params: BernoulliParams) -> np.ndarray:
        r""":math:`A = -\log(1 - \theta)`, (K, D)."""
        return -np.log1p(-params.means)

    def mean(self, params: BernoulliParams) -> np.ndarray:
        """:math:`\\theta`, (K, D)."""
        return params.means

    def maximize(self, stats: ColumnStatistics) -> BernoulliParams:
        r""":math:`\theta_{kd} = (S_{kd} + \alpha) / (N_{kd} + 2\alpha)`."""
        return BernoulliParams((stats.sums[:, 0, :] + self.alpha) / (stats.counts + 2 * self.alpha))

    def regularization_gap(self, params: BernoulliParams, stats: ColumnStatistics) -> float:
        r"""Loss of Q per sample from the pseudo-counts, exactly:
        :math:`\sum_{kd} N_{kd}\, \mathrm{KL}(\mathrm{Bern}(\theta^*_{kd}) \,\|\,
        \mathrm{Bern}(\theta_{kd})) / \sum_k N_k` with :math:`\theta^* = S / N`."""
        counts = stats.counts
        best = np.divide(stats.sums[:, 0, :], counts, out=np.zeros_like(counts), where=counts > 0)
        theta = params.means
        loss = counts * (rel_entr(best, theta) + rel_entr(1.0 - best, 1.0 - theta))
        return float(loss.sum() / stats.resp_sum.sum())

    def n_parameters(self, params: BernoulliParams) -> int:
        """K·D means."""
        return int(params.means.size)

    def sample(
        self, params: BernoulliParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` binary rows from each component, in component order."""
        means = np.repeat(params.means, np.asarray(counts, dtype=int), axis=0)
        return (rng.uniform(size=means.shape) < means).astype(np.float64)
