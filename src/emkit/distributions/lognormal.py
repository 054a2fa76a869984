r"""Log-normal components: :math:`\log x` is Gaussian.

For component :math:`k` with mean :math:`\mu_k` and covariance :math:`\Sigma_k` of
:math:`y = \log x` (element-wise),

.. math::

    \log p(x \mid z = k) = \log \mathcal N(\log x \mid \mu_k, \Sigma_k) - \sum_d \log x_d,

the Gaussian log-density of the logs plus the log-Jacobian of :math:`x \mapsto \log x`,
which is the same for every component and computed once per row. Everything else is the
Gaussian family's, on the logs: its statistics :math:`N_k`, :math:`\sum_n \gamma_{nk} y_n`,
:math:`\sum_n \gamma_{nk} y_n y_n^\top` (or their diagonal), its closed-form M-step
:math:`\mu_k = \bar y_k`, :math:`\Sigma_k = \overline{(y - \mu_k)(y - \mu_k)^\top}_k +
\epsilon I`, its two E-step paths and its regulariser (see :mod:`emkit.distributions.gaussian`).
Like the Gaussian family it marginalises missing values (NaN): the log of a missing value is
missing, and the log-Jacobian sums over the observed entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from emkit._backend import Array, namespace
from emkit.distributions._base import Statistics
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStatistics
from emkit.distributions.gaussian_missing import PartialChunk, fill_missing
from emkit.distributions.product import check_support

__all__ = ["LogNormal", "LogNormalStatistics"]


@dataclasses.dataclass(frozen=True)
class LogNormalStatistics(Statistics):
    r"""The Gaussian statistics of :math:`\log x` and :math:`\sum_n \gamma_{nk} \sum_d
    \log x_{nd}` (K,), which only the value of Q needs."""

    gaussian: GaussianStatistics
    log_jacobian: Array


@dataclasses.dataclass(frozen=True)
class LogNormalChunk:
    """The Gaussian family's features of :math:`\\log x` and :math:`\\sum_d \\log x_d`."""

    gaussian: Any
    log_jacobian: Array


@dataclasses.dataclass(frozen=True)
class LogNormal:
    """Family of multivariate log-normal distributions.

    Parameters are :class:`~emkit.distributions.GaussianParams` of :math:`\\log x`.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        Structure of the covariance of :math:`\\log x`, as for the Gaussian family.
    reg_covar : float
        Non-negative regulariser added to the diagonal of every covariance of the logs.
    """

    covariance_type: str = "diag"
    reg_covar: float = 1e-6
    location = False

    @property
    def gaussian(self) -> Gaussian:
        """The Gaussian family of the logs."""
        return Gaussian(self.covariance_type, self.reg_covar)

    def prepare(self, params: GaussianParams, like: Array, bias: np.ndarray | None = None):
        """The Gaussian family's coefficients."""
        return self.gaussian.prepare(params, like, bias)

    def features(self, X: Array, prepared) -> LogNormalChunk:
        """Gaussian features of :math:`\\log x` and the log-Jacobian per row (over the
        observed entries)."""
        xp = namespace(X)
        logs = xp.log(X)
        observed_logs = xp.where(xp.isnan(logs), xp.zeros_like(logs), logs)
        return LogNormalChunk(
            self.gaussian.features(logs, prepared), xp.sum(observed_logs, axis=1)
        )

    def log_prob(self, chunk: LogNormalChunk, prepared) -> Array:
        r""":math:`\log\mathcal N(\log x_n \mid \mu_k, \Sigma_k) - \sum_d \log x_{nd}` + bias."""
        return self.gaussian.log_prob(chunk.gaussian, prepared) - chunk.log_jacobian[:, None]

    def statistics(self, chunk: LogNormalChunk, resp: Array) -> LogNormalStatistics:
        """The Gaussian statistics of the logs, and the weighted log-Jacobians."""
        return LogNormalStatistics(
            self.gaussian.statistics(chunk.gaussian, resp), chunk.log_jacobian @ resp
        )

    def impute(
        self, X: Array, chunk: LogNormalChunk, params: GaussianParams, resp: Array
    ) -> Array:
        r"""The chunk ``X`` with each missing entry replaced by its conditional expectation
        :math:`\sum_k \gamma_{nk} \exp(\hat y_{nkd} + \tfrac12 v_{nkd})`, with the
        conditional mean :math:`\hat y` and variance :math:`v` of :math:`\log x_d` given
        the observed logs (the mean of a log-normal variable)."""
        if not isinstance(chunk.gaussian, PartialChunk):
            return X
        xp = namespace(X)
        return fill_missing(
            X, chunk.gaussian.missing, resp,
            lambda means, variances: xp.exp(means + 0.5 * variances),
        )

    def maximize(self, stats: LogNormalStatistics) -> GaussianParams:
        """The Gaussian M-step on the logs."""
        return self.gaussian.maximize(stats.gaussian)

    def expected_log_likelihood(self, params: GaussianParams, stats: LogNormalStatistics) -> float:
        r"""The Gaussian Q of the logs minus :math:`\sum_{nk} \gamma_{nk} \sum_d \log x_{nd}`."""
        gaussian_q = self.gaussian.expected_log_likelihood(params, stats.gaussian)
        return gaussian_q - float(stats.log_jacobian.sum())

    def regularization_gap(self, params: GaussianParams, stats: LogNormalStatistics) -> float:
        """The Gaussian family's gap (the Jacobian does not depend on the parameters)."""
        return self.gaussian.regularization_gap(params, stats.gaussian)

    def reseed(
        self, params: GaussianParams, stats: LogNormalStatistics, component: int,
        point: np.ndarray,
    ) -> GaussianParams:
        """The Gaussian re-seeding at the logs of ``point``."""
        return self.gaussian.reseed(params, stats.gaussian, component, np.log(point))

    def n_parameters(self, params: GaussianParams) -> int:
        """As the Gaussian family of the logs."""
        return self.gaussian.n_parameters(params)

    def sample(
        self, params: GaussianParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """Exponentials of Gaussian draws of the logs, in component order."""
        return np.exp(self.gaussian.sample(params, counts, rng))

    def validate(self, X: Array, labels: Sequence[str]) -> None:
        """Refuse values that are not positive, naming column and row."""
        check_support(
            X, lambda xp, x: x > 0, "positive numbers", labels, "LogNormal", allow_nan=True
        )
