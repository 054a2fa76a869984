r"""A finite mixture: a latent class with weights :math:`\pi` and a component family.

The E-step of the notes, for one chunk of rows:

.. math::

    a_{nk} = \log \pi_k + \log p(x_n \mid z_n = k), \qquad
    \log p(x_n) = \operatorname{logsumexp}_k a_{nk}, \qquad
    \gamma_{nk} = e^{a_{nk} - \log p(x_n)},

all in log space, followed by the statistics :math:`\sum_n w_n \gamma_{nk} T(x_n)` weighted by
the sample weights :math:`w_n`. The M-step maximises the expected complete-data
log-likelihood: :math:`\pi_k = N_k / \sum_j N_j` and the family's own update.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from emkit._backend import Array, log_normalize, namespace
from emkit.distributions._base import ComponentFamily, Statistics

__all__ = ["ChunkExpectation", "Mixture", "MixtureParams", "MixtureStatistics"]


@dataclasses.dataclass(frozen=True)
class MixtureParams:
    """Mixing weights :math:`\\pi` (K,) and the component family's parameters."""

    weights: np.ndarray
    components: Any


@dataclasses.dataclass(frozen=True)
class MixtureStatistics(Statistics):
    """Statistics of the latent class (:math:`N_k`) and of the components."""

    resp_sum: Array
    components: Statistics


@dataclasses.dataclass(frozen=True)
class ChunkExpectation:
    """What one E-step over one chunk yields: statistics and the summed log-likelihood."""

    stats: MixtureStatistics
    log_likelihood: Array
    weight: Array


@dataclasses.dataclass(frozen=True)
class Mixture:
    """K components of one family mixed with weights :math:`\\pi`.

    Parameters
    ----------
    family : ComponentFamily
        The component distributions.
    n_components : int
        K.
    """

    family: ComponentFamily
    n_components: int

    def prepare(self, params: MixtureParams, like: Array) -> Any:
        """The family's E-step coefficients, with the log-weights folded in, for ``like``."""
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        return self.family.prepare(params.components, like, bias=log_weights)

    def log_joint(self, X: Array, prepared: Any) -> Array:
        r""":math:`a_{nk} = \log \pi_k + \log p(x_n \mid z_n = k)`, shape (n, K)."""
        return self.family.log_prob(self.family.features(X, prepared), prepared)

    def statistics(self, X: Array, resp: Array) -> MixtureStatistics:
        """Sufficient statistics of a chunk for responsibilities ``resp`` (weights included)."""
        xp = namespace(resp)
        features = self.family.features(X, None)
        return MixtureStatistics(xp.sum(resp, axis=0), self.family.statistics(features, resp))

    def expectation(
        self, X: Array, sample_weight: Array | None, prepared: Any
    ) -> ChunkExpectation:
        """Exact E-step on a chunk: posterior responsibilities, then their statistics."""
        xp = namespace(X)
        features = self.family.features(X, prepared)
        resp, log_norm = log_normalize(self.family.log_prob(features, prepared))
        if sample_weight is None:
            weight = xp.asarray(float(X.shape[0]), dtype=X.dtype)
            log_likelihood = xp.sum(log_norm)
        else:
            resp = resp * sample_weight[:, None]
            weight = xp.sum(sample_weight)
            log_likelihood = xp.sum(
                xp.where(sample_weight > 0, log_norm * sample_weight, xp.zeros_like(log_norm))
            )
        stats = MixtureStatistics(xp.sum(resp, axis=0), self.family.statistics(features, resp))
        return ChunkExpectation(stats, log_likelihood, weight)

    def maximize(self, stats: MixtureStatistics) -> MixtureParams:
        r"""M-step: :math:`\pi_k \propto N_k + 10\varepsilon` and the family's update."""
        nk = stats.resp_sum + 10 * np.finfo(np.float64).eps
        return MixtureParams(nk / nk.sum(), self.family.maximize(stats.components))

    def objective(self, params: MixtureParams, result) -> float:
        """What EM increases: the mean log-likelihood per sample of the pass ``result``."""
        return result.log_likelihood

    def regularization_gap(self, params: MixtureParams, stats: MixtureStatistics) -> float:
        """Largest loss of Q per sample that the family's regularised M-step allows."""
        return self.family.regularization_gap(params.components, stats.components)

    def empty_components(self, stats: MixtureStatistics) -> np.ndarray:
        """Components whose total responsibility vanished (below :math:`10^{-12} \\sum_k N_k`)."""
        total = stats.resp_sum.sum()
        return np.flatnonzero(stats.resp_sum <= 1e-12 * total)

    def reseed(
        self, params: MixtureParams, stats: MixtureStatistics, points: np.ndarray
    ) -> MixtureParams:
        """Move each empty component onto one of ``points`` (the worst-explained rows).

        A re-seeded component gets the pooled covariance of the data and the weight of one
        average sample, :math:`1 / \\sum_k N_k`; the weights are then renormalised.
        """
        components = params.components
        weights = params.weights.copy()
        total = stats.resp_sum.sum()
        for component, point in zip(self.empty_components(stats), points, strict=False):
            components = self.family.reseed(components, stats.components, int(component), point)
            weights[component] = 1.0 / total
        return MixtureParams(weights / weights.sum(), components)

    def n_parameters(self, params: MixtureParams) -> int:
        """K − 1 free weights plus the family's parameters."""
        return self.n_components - 1 + self.family.n_parameters(params.components)
