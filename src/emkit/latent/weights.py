r"""Priors on the hidden class: :math:`p(C)`, :math:`p(C \mid ID)` and :math:`p(C \mid w)`.

The structured model :math:`p(X, C, F, ID) = p(X \mid C, F)\, p(C \mid ID)\, p(ID)\, p(F)`
needs, for every row, the prior log-probabilities :math:`\log p(c_n = k \mid \cdot)` that
the E-step adds to the components' log-likelihoods; its M-step maximises
:math:`\sum_n \sum_k \gamma_{nk} \log p(c_n = k \mid \cdot)` over the prior's parameters,
separately from the components' (the two parts of Q share no parameter). Three priors:

* :class:`ConstantWeights` — :math:`p(c = k) = \pi_k`; M-step :math:`\pi_k = N_k / N` with
  :math:`N_k = \sum_n \gamma_{nk}`.
* :class:`GroupWeights` — one weight vector per group, :math:`p(c = k \mid ID = g) =
  \pi_{gk}`; M-step :math:`\pi_{gk} = N_{gk} / N_g` with :math:`N_{gk} = \sum_{n \in g}
  \gamma_{nk}` (the statistics are a G × K table that adds up). A group not seen in
  training gets the population weights :math:`N_k / N`, the class shares of all training
  rows. A group with a single row gets that row's responsibilities, which EM sharpens
  towards the class that explains the row best (the maximum-likelihood answer).
* :class:`SoftmaxGating` — concomitant covariates :math:`w` (with an intercept),
  :math:`p(c = k \mid w) = \operatorname{softmax}_k(V \tilde w)` with the first class as
  reference (:math:`V_0 = 0`). No closed form: the E-step collects the gradient
  :math:`\sum_n (\gamma_{nk} - s_n p_{nk}) \tilde w_n` (:math:`s_n = \sum_k \gamma_{nk}`)
  and the information :math:`\sum_n s_n (\operatorname{diag} p_n - p_n p_n^\top) \otimes
  \tilde w_n \tilde w_n^\top` of the multinomial logit at the current V, and
  :meth:`SoftmaxGating.maximize` proposes a Newton step that the caller checks (generalised
  EM). ``ridge`` penalises the slopes, :math:`-\tfrac\lambda2 \lVert V_{\text{slopes}}
  \rVert^2`, which keeps V finite when a class is perfectly separated by w.

The weights M-steps add :math:`10\varepsilon` to every count, as :class:`emkit.em.Mixture`
does, so that no weight is exactly zero.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from emkit.distributions._base import Statistics
from emkit.distributions.regression import Rows, solve_gram

__all__ = [
    "ClassWeights",
    "ConstantWeights",
    "CountStatistics",
    "GatingParams",
    "GatingStatistics",
    "GroupParams",
    "GroupStatistics",
    "GroupWeights",
    "SoftmaxGating",
]

_TINY_COUNT = 10 * float(np.finfo(np.float64).eps)


def _expected_log_weights(counts: np.ndarray, weights: np.ndarray) -> float:
    r""":math:`\sum N \log \pi` over matching entries, 0 where the count is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(counts > 0, counts * np.log(weights), 0.0).sum())


def _normalized(counts: np.ndarray) -> np.ndarray:
    r"""Counts plus :math:`10\varepsilon`, normalised along the last axis."""
    counts = counts + _TINY_COUNT
    return counts / counts.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class CountStatistics(Statistics):
    r""":math:`N_k = \sum_n \gamma_{nk}`, shape (K,)."""

    resp_sum: np.ndarray


@dataclasses.dataclass(frozen=True)
class ClassWeights:
    """Constant class weights :math:`\\pi` (K,)."""

    weights: np.ndarray

    @property
    def population(self) -> np.ndarray:
        """The weights of every row (the same as ``weights``)."""
        return self.weights


@dataclasses.dataclass(frozen=True)
class ConstantWeights:
    """The same class weights for every row, :math:`p(c = k) = \\pi_k`."""

    n_components: int
    newton: ClassVar[bool] = False

    def log_prob(self, rows: Rows, params: ClassWeights) -> np.ndarray:
        r""":math:`\log \pi_k` on every row, (n, K)."""
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        return np.tile(log_weights, (len(rows), 1))

    def statistics(self, rows: Rows, resp: np.ndarray, log_prior: np.ndarray) -> CountStatistics:
        r""":math:`N_k = \sum_n \gamma_{nk}` of a chunk."""
        return CountStatistics(resp.sum(axis=0))

    def initial_statistics(self, rows: Rows, resp: np.ndarray) -> CountStatistics:
        """The same counts, from initial responsibilities."""
        return CountStatistics(resp.sum(axis=0))

    def initialize(self, stats: CountStatistics) -> ClassWeights:
        """The class shares of the initial responsibilities."""
        return ClassWeights(_normalized(stats.resp_sum))

    def maximize(self, stats: CountStatistics, params: ClassWeights) -> ClassWeights:
        r""":math:`\pi_k = N_k / N`."""
        return ClassWeights(_normalized(stats.resp_sum))

    def expected_log_likelihood(self, params: ClassWeights, stats: CountStatistics) -> float:
        r"""The prior's part of Q, :math:`\sum_k N_k \log \pi_k`."""
        return _expected_log_weights(stats.resp_sum, params.weights)

    def penalty(self, params: ClassWeights) -> float:
        """0: the weights are not penalised."""
        return 0.0

    def reseed(self, params: ClassWeights, resp_sum: np.ndarray, component: int) -> ClassWeights:
        """Class ``component`` gets the weight of one average sample, :math:`1/N`."""
        weights = params.weights.copy()
        weights[component] = 1.0 / resp_sum.sum()
        return ClassWeights(weights / weights.sum())

    def n_parameters(self, params: ClassWeights) -> int:
        """K − 1 free weights."""
        return self.n_components - 1


@dataclasses.dataclass(frozen=True)
class GroupStatistics(Statistics):
    r""":math:`N_{gk} = \sum_{n \in g} \gamma_{nk}`, shape (G, K)."""

    resp_sum: np.ndarray


@dataclasses.dataclass(frozen=True)
class GroupParams:
    """Weights per group (G, K), and the population weights (K,) for unseen groups."""

    weights: np.ndarray
    population: np.ndarray


@dataclasses.dataclass(frozen=True)
class GroupWeights:
    """Class weights per group, :math:`p(c = k \\mid ID = g) = \\pi_{gk}`.

    Parameters
    ----------
    n_components : int
    n_groups : int
        G; rows carry group codes 0..G-1, or -1 for a group not seen in training.
    """

    n_components: int
    n_groups: int
    newton: ClassVar[bool] = False

    def log_prob(self, rows: Rows, params: GroupParams) -> np.ndarray:
        r""":math:`\log \pi_{g_n k}`, the population weights for code -1, (n, K)."""
        table = np.vstack([params.weights, params.population])
        with np.errstate(divide="ignore"):
            return np.log(table)[rows.groups]

    def _counts(self, rows: Rows, resp: np.ndarray) -> GroupStatistics:
        """:math:`N_{gk}` of a chunk, one weighted count of the codes per class."""
        counts = np.empty((self.n_groups, resp.shape[1]))
        for k in range(resp.shape[1]):
            counts[:, k] = np.bincount(rows.groups, weights=resp[:, k], minlength=self.n_groups)
        return GroupStatistics(counts)

    def statistics(self, rows: Rows, resp: np.ndarray, log_prior: np.ndarray) -> GroupStatistics:
        r""":math:`N_{gk} = \sum_{n \in g} \gamma_{nk}` of a chunk."""
        return self._counts(rows, resp)

    def initial_statistics(self, rows: Rows, resp: np.ndarray) -> GroupStatistics:
        """The same counts, from initial responsibilities."""
        return self._counts(rows, resp)

    def initialize(self, stats: GroupStatistics) -> GroupParams:
        """The class shares of the initial responsibilities in every group."""
        return self.maximize(stats, None)

    def maximize(self, stats: GroupStatistics, params: GroupParams | None) -> GroupParams:
        r""":math:`\pi_{gk} = N_{gk} / N_g`, population :math:`N_k / N`; a group whose rows
        all have zero weight gets the population weights."""
        population = _normalized(stats.resp_sum.sum(axis=0))
        weights = _normalized(stats.resp_sum)
        empty = stats.resp_sum.sum(axis=1) <= 0
        weights[empty] = population
        return GroupParams(weights, population)

    def expected_log_likelihood(self, params: GroupParams, stats: GroupStatistics) -> float:
        r"""The prior's part of Q, :math:`\sum_{g,k} N_{gk} \log \pi_{gk}`."""
        return _expected_log_weights(stats.resp_sum, params.weights)

    def penalty(self, params: GroupParams) -> float:
        """0: the weights are not penalised."""
        return 0.0

    def reseed(self, params: GroupParams, resp_sum: np.ndarray, component: int) -> GroupParams:
        """Class ``component`` gets, in every group, the weight of one average sample of the
        whole data, :math:`1/N`."""
        weights = params.weights.copy()
        population = params.population.copy()
        share = 1.0 / resp_sum.sum()
        weights[:, component] = share
        population[component] = share
        return GroupParams(
            weights / weights.sum(axis=1, keepdims=True), population / population.sum()
        )

    def n_parameters(self, params: GroupParams) -> int:
        """G (K − 1) free weights."""
        return self.n_groups * (self.n_components - 1)


@dataclasses.dataclass(frozen=True)
class GatingStatistics(Statistics):
    r"""A Newton step on the multinomial logit, at the V the pass used.

    Every field has a leading axis of length 1 (the gating is one unit of a checked
    Newton step): class counts :math:`N_k` (1, K), the gradient (1, (K-1)Q), the information
    (1, (K-1)Q, (K-1)Q) and :math:`Q_{\text{prior}} = \sum_n \sum_k \gamma_{nk} \log
    p_{nk}` (1,). Coefficients are flattened class by class.
    """

    resp_sum: np.ndarray
    gradient: np.ndarray
    information: np.ndarray
    objective: np.ndarray


@dataclasses.dataclass(frozen=True)
class GatingParams:
    """Gating coefficients V (K, Q) on the concomitant design (the intercept last), with
    ``coef[0] == 0``, and the class shares of the rows that fitted them (K,)."""

    coef: np.ndarray
    population: np.ndarray


@dataclasses.dataclass(frozen=True)
class SoftmaxGating:
    r"""Class probabilities :math:`\operatorname{softmax}(V \tilde w_n)` from concomitant
    covariates.

    Parameters
    ----------
    n_components : int
    n_columns : int
        Q, the columns of the concomitant design (the covariates and the intercept).
    ridge : float
        :math:`\lambda \ge 0` on the slopes (not on the intercepts).
    """

    n_components: int
    n_columns: int
    ridge: float = 0.0
    newton: ClassVar[bool] = True

    def log_prob(self, rows: Rows, params: GatingParams) -> np.ndarray:
        r""":math:`\eta_{nk} - \log \sum_j e^{\eta_{nj}}` with :math:`\eta = \tilde W V^\top`."""
        eta = rows.gate @ params.coef.T
        shift = eta.max(axis=1, keepdims=True)
        eta -= shift
        return eta - np.log(np.exp(eta).sum(axis=1, keepdims=True))

    def statistics(
        self, rows: Rows, resp: np.ndarray, log_prior: np.ndarray
    ) -> GatingStatistics:
        """Gradient, information and value of the prior's part of Q (see the class)."""
        gate = rows.gate
        prob = np.exp(log_prior)
        total = resp.sum(axis=1)
        free = self.n_components - 1
        n_columns = gate.shape[1]
        gradient = ((resp - total[:, None] * prob)[:, 1:]).T @ gate
        information = np.empty((free, n_columns, free, n_columns))
        for i in range(free):
            for j in range(i, free):
                curvature = -total * prob[:, i + 1] * prob[:, j + 1]
                if i == j:
                    curvature = curvature + total * prob[:, i + 1]
                block = (gate * curvature[:, None]).T @ gate
                information[i, :, j, :] = block
                information[j, :, i, :] = block.T
        size = free * n_columns
        return GatingStatistics(
            resp.sum(axis=0)[None],
            gradient.reshape(1, size),
            information.reshape(1, size, size),
            np.sum(resp * log_prior, keepdims=True).reshape(1),
        )

    def initial_statistics(self, rows: Rows, resp: np.ndarray) -> CountStatistics:
        """Class counts of the initial responsibilities (the start has no slopes)."""
        return CountStatistics(resp.sum(axis=0))

    def initialize(self, stats: CountStatistics) -> GatingParams:
        """Intercepts :math:`\\log (N_k / N_0)`, slopes 0: the class shares for every w."""
        population = _normalized(stats.resp_sum)
        return self.from_weights(population)

    def from_weights(self, weights: np.ndarray) -> GatingParams:
        """The gating that gives every row the class weights ``weights``."""
        coef = np.zeros((self.n_components, self.n_columns))
        coef[:, -1] = np.log(weights) - np.log(weights[0])
        return GatingParams(coef, weights)

    def _penalty_diagonal(self) -> np.ndarray:
        r""":math:`\lambda D` on the flattened free rows of V: slopes, not intercepts."""
        mask = np.ones(self.n_columns)
        mask[-1] = 0.0
        return self.ridge * np.tile(mask, self.n_components - 1)

    def maximize(self, stats: GatingStatistics, params: GatingParams) -> GatingParams:
        r"""The Newton step :math:`V + (I + \lambda D)^{-1} (g - \lambda D V)` on the free
        rows of V (a minimum-norm step where the information is singular)."""
        penalty = self._penalty_diagonal()
        free = params.coef[1:].reshape(-1)
        step, _ = solve_gram(
            stats.information[0], (stats.gradient[0] - penalty * free)[:, None], penalty
        )
        coef = params.coef.copy()
        coef[1:] += step[:, 0].reshape(self.n_components - 1, self.n_columns)
        return GatingParams(coef, _normalized(stats.resp_sum[0]))

    def predicted_increase(
        self, stats: GatingStatistics, params: GatingParams, proposal: GatingParams
    ) -> np.ndarray:
        r"""The increase of the prior's Q that the quadratic model of the Newton step
        predicts, :math:`\tfrac12 (g - \lambda D V)^\top \Delta`, (1,)."""
        free = params.coef[1:].reshape(-1)
        gradient = stats.gradient[0] - self._penalty_diagonal() * free
        step = (proposal.coef - params.coef)[1:].reshape(-1)
        return np.array([0.5 * gradient @ step])

    def penalized_objective(self, stats: GatingStatistics, params: GatingParams) -> np.ndarray:
        r""":math:`Q_{\text{prior}} - \tfrac\lambda2 \lVert V_{\text{slopes}} \rVert^2`, (1,)."""
        value = stats.objective + self.penalty(params)
        return np.where(np.isnan(value), -np.inf, value)

    def expected_log_likelihood(self, params: GatingParams, stats: GatingStatistics) -> float:
        """The prior's penalised part of Q, from statistics taken at ``params``."""
        return float(self.penalized_objective(stats, params)[0])

    def interpolate(
        self, params: GatingParams, proposal: GatingParams, step: np.ndarray
    ) -> GatingParams:
        """``params`` moved the fraction ``step[0]`` of the way to ``proposal``."""
        coef = params.coef + step[0] * (proposal.coef - params.coef)
        return GatingParams(coef, proposal.population)

    def penalty(self, params: GatingParams) -> float:
        r""":math:`-\tfrac\lambda2 \lVert V_{\text{slopes}} \rVert^2`."""
        return float(-0.5 * self.ridge * (params.coef[:, :-1] ** 2).sum())

    def reseed(self, params: GatingParams, resp_sum: np.ndarray, component: int) -> GatingParams:
        """Class ``component`` gets the average of the other classes' linear predictors
        minus :math:`\\log N`: about the weight of one sample for every w."""
        others = np.delete(params.coef, component, axis=0)
        coef = params.coef.copy()
        coef[component] = others.mean(axis=0)
        coef[component, -1] -= np.log(resp_sum.sum())
        population = params.population.copy()
        population[component] = 1.0 / resp_sum.sum()
        return GatingParams(coef - coef[0], population / population.sum())

    def n_parameters(self, params: GatingParams) -> int:
        """(K − 1) Q free coefficients."""
        return (self.n_components - 1) * self.n_columns
