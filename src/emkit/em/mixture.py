r"""A finite mixture: a latent class with weights :math:`\pi` and a component family.

The E-step of the notes, for one chunk of rows:

.. math::

    a_{nk} = \log \pi_k + \log p(x_n \mid z_n = k), \qquad
    \log p(x_n) = \operatorname{logsumexp}_k a_{nk}, \qquad
    \gamma_{nk} = e^{a_{nk} - \log p(x_n)},

all in log space, followed by the statistics :math:`\sum_n w_n \gamma_{nk} T(x_n)` weighted by
the sample weights :math:`w_n`. An E-step strategy (:mod:`emkit.em.strategies`) may put
another distribution :math:`q_{nk}` in place of :math:`\gamma_{nk}`. The M-step maximises the
expected complete-data log-likelihood

.. math::

    Q(\theta) = \sum_k N_k \log \pi_k + \sum_n \sum_k q_{nk} \log p(x_n \mid z_n = k),

:math:`\pi_k = N_k / \sum_j N_j` and the family's own update, or increases it
(:mod:`emkit.em.maximization`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from emkit._backend import Array, log_normalize, namespace
from emkit.distributions._base import ComponentFamily, Statistics
from emkit.em.maximization import ClosedForm, MStepResult

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
    """What one E-step over one chunk yields: statistics and the summed log-likelihood,
    the summed weights, and weighted sums of the strategy's per-row quantities."""

    stats: MixtureStatistics
    log_likelihood: Array
    weight: Array
    sums: dict[str, Array] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Mixture:
    """K components of one family mixed with weights :math:`\\pi`.

    Parameters
    ----------
    family : ComponentFamily
        The component distributions.
    n_components : int
        K.
    maximization : ClosedForm, Generalized or ConditionalMaximization, keyword-only
        The M-step (:mod:`emkit.em.maximization`); the family's closed form by default.
    """

    family: ComponentFamily
    n_components: int
    maximization: Any = dataclasses.field(default=ClosedForm(), kw_only=True)

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
        self, X: Array, sample_weight: Array | None, prepared: Any, estep=None
    ) -> ChunkExpectation:
        """E-step on a chunk: responsibilities, then their statistics.

        Exact without ``estep``; otherwise the :class:`emkit.em.strategies.EStepPass` of
        this chunk forms them and may add per-row quantities (summed with the sample
        weights into :attr:`ChunkExpectation.sums`).
        """
        xp = namespace(X)
        features = self.family.features(X, prepared)
        log_joint = self.family.log_prob(features, prepared)
        if estep is None:
            resp, log_norm = log_normalize(log_joint)
            extras = {}
        else:
            resp, log_norm, extras = estep.responsibilities(log_joint)
        if sample_weight is None:
            weight = xp.asarray(float(X.shape[0]), dtype=X.dtype)
            log_likelihood = xp.sum(log_norm)
            sums = {name: xp.sum(values) for name, values in extras.items()}
        else:
            resp = resp * sample_weight[:, None]
            weight = xp.sum(sample_weight)
            log_likelihood = _weighted_sum(log_norm, sample_weight)
            sums = {name: _weighted_sum(values, sample_weight) for name, values in extras.items()}
        stats = MixtureStatistics(xp.sum(resp, axis=0), self.family.statistics(features, resp))
        return ChunkExpectation(stats, log_likelihood, weight, sums)

    def maximize_weights(self, stats: MixtureStatistics) -> np.ndarray:
        r""":math:`\pi_k \propto N_k + 10\varepsilon`."""
        nk = stats.resp_sum + 10 * np.finfo(np.float64).eps
        return nk / nk.sum()

    def maximize(self, stats: MixtureStatistics) -> MixtureParams:
        r"""M-step: :math:`\pi_k \propto N_k + 10\varepsilon` and the family's update."""
        return MixtureParams(self.maximize_weights(stats), self.family.maximize(stats.components))

    def maximize_from(self, params: MixtureParams, stats: MixtureStatistics) -> MStepResult:
        """The M-step of :attr:`maximization` from the current ``params``."""
        return self.maximization.update(self, params, stats)

    def expected_log_likelihood(self, params: MixtureParams, stats: MixtureStatistics) -> float:
        r""":math:`Q(\theta) = \sum_k N_k \log \pi_k + Q_{\text{family}}` (a total, not per
        sample) from float64 statistics; needs the family's ``expected_log_likelihood``
        (an optional method of :class:`~emkit.distributions.ComponentFamily`)."""
        family_q = getattr(self.family, "expected_log_likelihood", None)
        if family_q is None:
            raise NotImplementedError(
                f"{type(self.family).__name__} does not provide expected_log_likelihood("
                "params, stats), which Q needs; see emkit.distributions.ComponentFamily"
            )
        nk = stats.resp_sum
        with np.errstate(divide="ignore", invalid="ignore"):
            weights_term = np.where(nk > 0, nk * np.log(params.weights), 0.0).sum()
        return float(weights_term) + float(family_q(params.components, stats.components))

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


def _weighted_sum(values: Array, sample_weight: Array) -> Array:
    r""":math:`\sum_n w_n v_n`, with rows of zero weight left out (their value may be -inf)."""
    xp = namespace(values)
    return xp.sum(xp.where(sample_weight > 0, values * sample_weight, xp.zeros_like(values)))
