r"""Mixtures of regressions with a structured class prior, fitted by EM.

The model of the notes,

.. math::

    p(X, C, F, ID) = p(X \mid C, F)\, p(C \mid ID)\, p(ID)\, p(F),

with observations :math:`X` (here ``y``), a hidden class :math:`C`, observed features
:math:`F` (here ``X``) and a group :math:`ID`. Neither :math:`p(ID)` nor :math:`p(F)` shares a
parameter with the rest, so they cancel from the posterior and drop out of the M-step. The
E-step is the notes' :math:`\gamma(c)`,

.. math::

    \gamma_{nk} = p(c_n = k \mid y_n, x_n, ID_n)
      = \frac{p(y_n \mid x_n, c_n = k)\, p(c_n = k \mid ID_n)}
             {\sum_j p(y_n \mid x_n, c_n = j)\, p(c_n = j \mid ID_n)},

computed in log space, and the M-step maximises
:math:`Q = \sum_n \sum_k \gamma_{nk} [\log p(y_n \mid x_n, c_n = k) + \log p(c_n = k \mid
ID_n)]`, whose two parts have separate parameters: the regressions
(:mod:`emkit.distributions.regression`) and the class prior (:mod:`emkit.latent.weights`:
constant weights, weights per group, or a softmax gating on concomitant covariates
:math:`w` in place of :math:`ID`). This is what R's flexmix and mixtools fit (mixtures of
regressions with concomitant variables).

Where the M-step has no closed form (logistic and Poisson regressions, the gating), it takes
Newton steps and checks each against Q (generalised EM); see :class:`ConditionalMixture`.
"""

from __future__ import annotations

import dataclasses
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.cluster import KMeans as _SKLearnKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from emkit._backend import log_normalize, to_numpy
from emkit._validation import (
    _locate_non_numeric,
    check_data,
    check_finite,
    check_n_samples,
    check_sample_weight,
)
from emkit.distributions._base import Statistics
from emkit.distributions.regression import (
    FAMILIES,
    RegressionParams,
    Rows,
    check_collinearity,
    select_units,
)
from emkit.em.loop import EMResult, as_callbacks, run_em
from emkit.em.maximization import MStepResult
from emkit.em.mixture import ChunkExpectation, _weighted_sum
from emkit.em.online import OnlineEM
from emkit.em.strategies import ALGORITHMS, EStep, get_strategy
from emkit.executors import PassResult
from emkit.executors.columns import ColumnData, Expectation
from emkit.io import SaveLoadMixin
from emkit.latent.weights import (
    ClassWeights,
    ConstantWeights,
    GatingParams,
    GroupParams,
    GroupStatistics,
    GroupWeights,
    SoftmaxGating,
)
from emkit.models._mixture import _seed

__all__ = ["ConditionalMixture", "MixtureOfRegressions", "StructuredParams"]

#: Halvings of a Newton step before the step is abandoned for this M-step.
MAX_HALVINGS = 30
#: A Newton step whose predicted increase of Q is below this many machine epsilons of |Q|
#: is not taken: the unit is at its maximum to rounding.
NEGLIGIBLE_INCREASE = 1e3
_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class StructuredParams:
    """The class prior's parameters and the regressions' (engine frame, float64)."""

    prior: Any
    components: RegressionParams


@dataclasses.dataclass(frozen=True)
class StructuredStatistics(Statistics):
    """Statistics of the class prior and of the regressions."""

    prior: Statistics
    components: Statistics


@dataclasses.dataclass(frozen=True)
class _NotWanted(Statistics):
    """Placeholder for the part of a revisit whose statistics are not needed."""


@dataclasses.dataclass(frozen=True)
class ConditionalMixture:
    r"""K conditional components with a class prior: the E- and M-steps of the model.

    The E-step on a chunk adds the prior's :math:`\log p(c = k \mid \cdot)` to the family's
    :math:`\log p(y \mid x, c = k)` and normalises in log space.

    The M-step updates the closed-form parts (Gaussian regressions, constant or per-group
    weights) exactly. Parts that propose a Newton step (logistic and Poisson regressions,
    the softmax gating) are checked unit by unit (each component, the gating as a whole):
    the data are revisited with the responsibilities of the last E-step (no n × K array is
    stored) to evaluate :math:`Q(\theta_{\text{trial}} \mid \theta_{\text{old}})`, and a
    unit's step is halved until its part of the (penalised) Q does not decrease — at most
    :data:`MAX_HALVINGS` times, after which the unit keeps its parameters. A unit whose
    predicted increase (the quadratic model's) is below rounding of its Q
    (:data:`NEGLIGIBLE_INCREASE`) is at its maximum and is not moved. Each checked
    step costs one pass over the data per trial; ``newton_steps`` steps are taken per
    M-step (1: generalised EM; more approach the exact M-step). Since
    :math:`\log p(y \mid \theta) - \log p(y \mid \theta_{\text{old}}) \ge
    Q(\theta \mid \theta_{\text{old}}) - Q(\theta_{\text{old}} \mid \theta_{\text{old}})`,
    every iteration still increases the (penalised) log-likelihood.

    Parameters
    ----------
    prior : ConstantWeights, GroupWeights or SoftmaxGating
    family : LinearGaussian, Logistic or PoissonRegression
    n_components : int
    newton_steps : int
        Checked Newton steps per M-step for the parts without a closed form.
    """

    prior: Any
    family: Any
    n_components: int
    newton_steps: int = 1

    # ------------------------------------------------------------------ E-step
    def log_prior(self, rows: Rows, params: StructuredParams) -> np.ndarray:
        r""":math:`\log p(c_n = k \mid ID_n \text{ or } w_n)`, (n, K)."""
        return self.prior.log_prob(rows, params.prior)

    def log_joint(self, rows: Rows, params: StructuredParams) -> np.ndarray:
        r""":math:`\log p(y_n \mid x_n, c_n = k) + \log p(c_n = k \mid \cdot)`, (n, K)."""
        features = self.family.features(rows.design, rows.y, params.components)
        return self.log_prior(rows, params) + self.family.log_prob(features, params.components)

    def log_likelihood(self, rows: Rows, params: StructuredParams) -> np.ndarray:
        r""":math:`\log p(y_n \mid x_n, \cdot)`, (n,)."""
        return log_normalize(self.log_joint(rows, params))[1]

    @staticmethod
    def _normalize(log_joint: np.ndarray, estep) -> tuple[np.ndarray, np.ndarray, dict]:
        """Responsibilities, :math:`\\log p(y_n \\mid \\cdot)` and the strategy's per-row
        extras: exact without ``estep``, else the strategy's."""
        if estep is None:
            return (*log_normalize(log_joint), {})
        return estep.responsibilities(log_joint)

    def _responsibilities(self, rows: Rows, params: StructuredParams, estep) -> np.ndarray:
        resp = self._normalize(self.log_joint(rows, params), estep)[0]
        return resp if rows.weight is None else resp * rows.weight[:, None]

    def expectation(
        self, rows: Rows, params: StructuredParams, estep=None
    ) -> ChunkExpectation:
        """E-step on a chunk: statistics, summed log-likelihood, summed weight and the
        weighted sums of the strategy's per-row quantities.

        Exact without ``estep``; otherwise the chunk's
        :class:`emkit.em.strategies.EStepPass` forms the responsibilities from the log joint
        :math:`\\log p(y_n \\mid x_n, k) + \\log p(c_n = k \\mid \\cdot)`.
        """
        log_prior = self.log_prior(rows, params)
        features = self.family.features(rows.design, rows.y, params.components)
        resp, log_norm, extras = self._normalize(
            log_prior + self.family.log_prob(features, params.components), estep
        )
        if rows.weight is None:
            weight = float(len(rows))
            log_likelihood = float(log_norm.sum())
            sums = {name: float(values.sum()) for name, values in extras.items()}
        else:
            resp = resp * rows.weight[:, None]
            weight = float(rows.weight.sum())
            with np.errstate(invalid="ignore"):
                log_likelihood = float(_weighted_sum(log_norm, rows.weight))
                sums = {
                    name: float(_weighted_sum(values, rows.weight))
                    for name, values in extras.items()
                }
        stats = StructuredStatistics(
            self.prior.statistics(rows, resp, log_prior),
            self.family.statistics(rows.design, rows.y, features, resp),
        )
        return ChunkExpectation(stats, log_likelihood, weight, sums)

    def trial_statistics(
        self, rows: Rows, params: StructuredParams, trial: StructuredParams, estep=None,
        *, prior: bool, components: bool,
    ) -> StructuredStatistics:
        """Statistics at ``trial`` with the responsibilities of the E-step (``estep``, the
        chunk's strategy pass; ``None``: exact) at ``params``, for the parts asked for."""
        resp = self._responsibilities(rows, params, estep)
        prior_stats = (
            self.prior.statistics(rows, resp, self.prior.log_prob(rows, trial.prior))
            if prior else _NotWanted()
        )
        if components:
            features = self.family.features(rows.design, rows.y, trial.components)
            component_stats = self.family.statistics(rows.design, rows.y, features, resp)
        else:
            component_stats = _NotWanted()
        return StructuredStatistics(prior_stats, component_stats)

    # ------------------------------------------------------------------ initialisation
    def initial_statistics(self, rows: Rows, resp: np.ndarray) -> StructuredStatistics:
        """Statistics for the first M-step from initial responsibilities."""
        return StructuredStatistics(
            self.prior.initial_statistics(rows, resp),
            self.family.initial_statistics(rows.design, rows.y, resp),
        )

    def initialize(self, stats: StructuredStatistics) -> StructuredParams:
        """Starting parameters: least squares on the working response, prior from counts."""
        return StructuredParams(
            self.prior.initialize(stats.prior), self.family.initialize(stats.components)
        )

    # ------------------------------------------------------------------ M-step
    def _newton_parts(self) -> dict[str, Any]:
        parts = {"prior": self.prior, "components": self.family}
        return {name: part for name, part in parts.items() if part.newton}

    def maximize_from(self, params: StructuredParams, expectation: Expectation) -> MStepResult:
        """M-step from ``params``: closed-form parts exactly, the others by checked Newton
        steps.

        Returns
        -------
        MStepResult
            The new parameters and the trail of Q per sample — at ``params``, after the
            prior's update and after the regressions' — which the loop checks never
            decreases (:func:`emkit.em.loop.check_m_step`).
        """
        stats = expectation.stats
        prior = self.prior.maximize(stats.prior, params.prior)
        components = self.family.maximize(stats.components, params.components)
        updated, final = StructuredParams(prior, components), stats
        newton = self._newton_parts()
        if newton:
            if expectation.revisit is None:
                raise ValueError(
                    "The checked Newton steps of the M-step (of "
                    f"{' and '.join(type(part).__name__ for part in newton.values())}) "
                    "revisit the data with the responsibilities of one E-step; statistics "
                    "combined from several passes (online EM) have no such pass."
                )
            updated = StructuredParams(
                params.prior if "prior" in newton else prior,
                params.components if "components" in newton else components,
            )
            proposals = {"prior": prior, "components": components}
            for step in range(self.newton_steps):
                if step:
                    proposals = {
                        name: part.maximize(getattr(final, name), getattr(updated, name))
                        for name, part in newton.items()
                    }
                updated, final, moved = self._checked_step(
                    expectation, updated, final, proposals
                )
                if not moved:
                    break
        return MStepResult(updated, self._trail(params, stats, updated, final))

    def _trail(self, old, stats, new, final) -> tuple[tuple[str, float], ...]:
        """Penalised Q per sample at ``old`` (statistics ``stats``), after the prior's
        update and after the regressions' (statistics ``final``: the Newton parts' taken at
        ``new``)."""
        total = float(stats.components.resp_sum.sum())
        prior_old = self.prior.expected_log_likelihood(old.prior, stats.prior)
        prior_new = self.prior.expected_log_likelihood(new.prior, final.prior)
        components_old = self.family.expected_log_likelihood(
            old.components, stats.components
        )
        components_new = self.family.expected_log_likelihood(
            new.components, final.components
        )
        return (
            ("start", (prior_old + components_old) / total),
            ("prior", (prior_new + components_old) / total),
            ("components", (prior_new + components_new) / total),
        )

    def _moved(self, params: StructuredParams, proposals, steps) -> StructuredParams:
        moved = {
            name: part.interpolate(getattr(params, name), proposals[name], steps[name])
            for name, part in self._newton_parts().items()
        }
        return dataclasses.replace(params, **moved)

    def _checked_step(self, expectation, params, stats, proposals):
        """One Newton step per unit, halved until the unit's part of Q does not decrease.

        Returns the new parameters, the statistics at them (the revisit where each unit
        was accepted) and whether any unit moved.
        """
        newton = self._newton_parts()
        base, steps, done, kept = {}, {}, {}, {}
        for name, part in newton.items():
            part_stats, part_params = getattr(stats, name), getattr(params, name)
            base[name] = part.penalized_objective(part_stats, part_params)
            predicted = part.predicted_increase(part_stats, part_params, proposals[name])
            negligible = predicted <= NEGLIGIBLE_INCREASE * _EPS * np.abs(base[name])
            steps[name] = np.where(negligible, 0.0, 1.0)
            done[name] = negligible
            kept[name] = part_stats
        accepted = {name: np.zeros_like(done[name]) for name in newton}
        for _ in range(MAX_HALVINGS):
            pending = [name for name in newton if not done[name].all()]
            if not pending:
                break
            trial = self._moved(params, proposals, steps)
            trial_stats = expectation.revisit(
                trial, prior="prior" in pending, components="components" in pending
            )
            for name in pending:
                part = newton[name]
                value = part.penalized_objective(getattr(trial_stats, name), getattr(trial, name))
                newly = ~done[name] & (value >= base[name])
                kept[name] = select_units(kept[name], getattr(trial_stats, name), newly)
                accepted[name] |= newly
                done[name] |= newly
                steps[name] = np.where(done[name], steps[name], 0.5 * steps[name])
        for name in newton:
            steps[name] = np.where(accepted[name], steps[name], 0.0)
        moved = any(accepted[name].any() for name in newton)
        return self._moved(params, proposals, steps), dataclasses.replace(stats, **kept), moved

    # ------------------------------------------------------------------ for run_em
    def penalty(self, params: StructuredParams) -> float:
        """The ridge terms of the penalised log-likelihood (0 without ridge)."""
        return self.prior.penalty(params.prior) + self.family.penalty(params.components)

    def objective(self, params: StructuredParams, result: PassResult) -> float:
        """What EM increases: the mean log-likelihood per sample plus the penalty per
        sample."""
        return result.log_likelihood + self.penalty(params) / result.total_weight

    def regularization_gap(self, params: StructuredParams, expectation: Expectation) -> float:
        """How far below the maximum of Q the noise floor may put the M-step, per sample."""
        return self.family.regularization_gap(params.components, expectation.stats.components)

    def empty_components(self, expectation: Expectation) -> np.ndarray:
        """Classes whose responsibility vanished (below :math:`10^{-12} N`), or whose
        weighted design no longer determines their coefficients."""
        component_stats = expectation.stats.components
        resp_sum = component_stats.resp_sum
        empty = resp_sum <= 1e-12 * resp_sum.sum()
        return np.flatnonzero(empty | self.family.degenerate(component_stats))

    def reseed(
        self, params: StructuredParams, expectation: Expectation, rows: Rows
    ) -> StructuredParams:
        """Each empty class onto one of ``rows`` (the worst-explained rows): its regression
        through that row, its prior weight that of one average sample."""
        component_stats = expectation.stats.components
        components, prior = params.components, params.prior
        for position, component in enumerate(self.empty_components(expectation)[: len(rows)]):
            row = rows.take(np.array([position]))
            components = self.family.reseed(components, component_stats, int(component), row)
            prior = self.prior.reseed(prior, component_stats.resp_sum, int(component))
        return StructuredParams(prior, components)

    def n_parameters(self, params: StructuredParams) -> int:
        """Free parameters of the prior and of the regressions."""
        return self.prior.n_parameters(params.prior) + self.family.n_parameters(
            params.components
        )


# ---------------------------------------------------------------------- the estimator
class MixtureOfRegressions(SaveLoadMixin, RegressorMixin, BaseEstimator):
    r"""Mixture of K regressions whose class prior may depend on a group or on covariates.

    The structured model of the notes, :math:`p(y, c, x, ID) = p(y \mid c, x)\,
    p(c \mid ID)\, p(ID)\, p(x)`: a hidden class :math:`c` picks one of K regressions of
    ``y`` on the features ``X``, and its prior is

    * constant, :math:`p(c = k) = \pi_k` (``fit(X, y)``);
    * per group, :math:`p(c = k \mid ID = g) = \pi_{gk}` (``fit(X, y, groups=ids)``): the
      M-step is :math:`\pi_{gk} = \sum_{n \in g} \gamma_{nk} / \sum_{n \in g} \sum_j
      \gamma_{nj}`;
    * a softmax gating on concomitant covariates :math:`w`,
      :math:`p(c = k \mid w) = \operatorname{softmax}_k(V \tilde w)`
      (``fit(X, y, concomitant=W)``), fitted by checked Newton steps.

    The E-step computes the posterior of the class, the notes' :math:`\gamma(c) \propto
    p(y \mid c, x)\, p(c \mid ID)`; the M-step fits each regression by
    :math:`\gamma`-weighted maximum likelihood — weighted least squares in closed form for
    Gaussian observations, checked Newton (IRLS) steps for logistic and Poisson ones — and
    the prior from the same responsibilities. Every iteration increases the
    log-likelihood (the penalised one with ``ridge``); the fit reports a decrease.

    Parameters
    ----------
    n_components : int, default=1
        Number of classes K.
    family : {'gaussian', 'logistic', 'poisson'}, default='gaussian'
        The regressions: linear-Gaussian (one or several outputs), logistic (y in {0, 1})
        or Poisson (y ≥ 0, log link).
    noise : {'component', 'shared'}, default='component'
        Gaussian family: a noise variance per class and output, or one per output shared
        by all classes. Ignored by the other families.
    fit_intercept : bool, default=True
        Give each regression an intercept (never penalised). Without it, the design is
        used as given (no centring).
    ridge : float, default=0.0
        :math:`\lambda \ge 0`, a ridge on the regression slopes. The fit then maximises the
        penalised log-likelihood: Gaussian, :math:`\ell - \sum_{k,t} \lambda \lVert
        \beta_{kt} \rVert^2 / (2 \sigma^2_{kt})` (the weighted ridge regression
        :math:`(A_k + \lambda D)^{-1} b_k`); logistic and Poisson,
        :math:`\ell - \tfrac\lambda2 \sum_k \lVert \beta_k \rVert^2`. The remedy for
        collinear features, and for perfectly separated classes in logistic regressions.
    gating_ridge : float, default=0.0
        The same on the gating's slopes, :math:`-\tfrac\lambda2 \lVert V \rVert^2`: the
        remedy for collinear concomitant covariates or classes separated by them.
    reg_noise : float, default=1e-6
        Added to every Gaussian noise variance: keeps a regression that fits a few rows
        exactly away from the singularity of the likelihood.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation (0: evaluate the start).
    n_init : int, default=1
        Number of initialisations; the one with the highest final log-likelihood is kept.
    init_params : {'kmeans', 'random'}, default='kmeans'
        Initial responsibilities: the labels of one k-means run on the standardised
        columns of ``[X, y]``, or uniformly random labels (as flexmix). The first M-step
        on them gives the starting parameters (for logistic and Poisson regressions, a
        least-squares fit of the link of y).
    newton_steps : int, default=1
        Checked Newton steps per M-step for the parts without a closed form (logistic and
        Poisson regressions, the gating); each costs at least one more pass over the
        data.
    weights_init : array-like, default=None
        Starting class weights: shape (K,), or (G, K) with ``groups`` (one row per group,
        in the order of the sorted group labels, ``groups_``). With ``concomitant``, the
        gating starts with these (positive) weights for every row (intercepts only).
    coef_init : array-like of shape (K, n_features) or (K, n_outputs, n_features), default=None
        Starting slopes (the second shape for a 2-D ``y``).
    intercept_init : array-like of shape (K,) or (K, n_outputs), default=None
        Starting intercepts.
    scale_init : array-like of shape (K,) or (K, n_outputs), default=None
        Starting noise standard deviations (Gaussian family; equal rows with
        ``noise='shared'``).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default=False
        Start the next :meth:`fit` from the fitted parameters (one initialisation); groups
        not seen before start from the population weights.
    verbose : int, default=0
    verbose_interval : int, default=10
    chunk_size : int or None, default=None
        Rows per chunk of the E-step; ``None``: about 2**19 working numbers per chunk.
    callbacks : callable or list of callables, default=None
        Called with an :class:`emkit.em.EMIteration` after the initial E-step and every
        iteration (``params`` is a dict of fitted-attribute names to arrays); returning
        ``True`` stops the fit.
    monotonic : {'warn', 'raise', 'ignore'}, default='warn'
        What happens when the log-likelihood decreases by more than rounding explains.
    algorithm : {'em', 'hard', 'stochastic', 'monte-carlo', 'annealed'} or EStep, \
default='em'
        The E-step (:mod:`emkit.em.strategies`), from the log joint
        :math:`a_{nk} = \log p(y_n \mid x_n, c_n = k) + \log p(c_n = k \mid \cdot)`:
        exact EM; classification EM (one-hot :math:`\arg\max_k a_{nk}`; ``lower_bounds_``
        then hold the classification log-likelihood :math:`\frac1N \sum_n w_n \max_k
        a_{nk}`, plus the ridge penalty per sample, which never decreases); stochastic or
        Monte Carlo EM (classes drawn from the posterior; the log-likelihood of every iterate
        is exact but not held to increase); deterministic annealing (tempered posteriors,
        then exact EM). The checked Newton steps of the logistic and Poisson regressions and
        of the gating check Q for the responsibilities the strategy formed (random draws
        are the same on every revisit of a chunk). Random draws come from
        ``random_state``.
    learning_decay : float, default=0.7
        :math:`\kappa \in (1/2, 1]` of the step sizes :math:`\rho_t = (t + t_0)^{-\kappa}`
        of :meth:`partial_fit`.
    learning_offset : float, default=10.0
        :math:`t_0 \ge 0` of the same step sizes.

    Attributes
    ----------
    coef_ : ndarray of shape (K, n_features) or (K, n_outputs, n_features)
        The slopes of each regression.
    intercept_ : ndarray of shape (K,) or (K, n_outputs)
        The intercepts (zeros without ``fit_intercept``).
    scale_ : ndarray of shape (K,) or (K, n_outputs)
        Gaussian family: the noise standard deviations (equal rows when shared).
    weights_ : ndarray of shape (K,)
        The class weights (constant prior), or the class shares of the training rows
        (groups, gating) — the weights of a group not seen in training.
    prior_ : {'constant', 'groups', 'gating'}
        The class prior fitted (chosen by the arguments of :meth:`fit`).
    groups_ : ndarray of shape (G,)
        With groups: the sorted group labels.
    group_weights_ : ndarray of shape (G, K)
        With groups: :math:`p(c = k \mid ID = g)`, row g for ``groups_[g]``.
    gating_coef_ : ndarray of shape (K, n_concomitant)
        With concomitant covariates: the slopes V of the gating (row 0, the reference
        class, is zero).
    gating_intercept_ : ndarray of shape (K,)
        With concomitant covariates: its intercepts (entry 0 is zero).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The mean log-likelihood per sample of the training data at the fitted parameters
        (plus the ridge penalty per sample when ``ridge`` or ``gating_ridge`` is positive).
    lower_bounds_ : list of float
        The same after every iteration of the best initialisation.
    n_steps_ : int
        Steps of the current :meth:`partial_fit` stream.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has feature names.

    Notes
    -----
    Edge cases:

    * A missing group (``None`` or NaN in ``groups``) is an error naming the row.
    * A group not seen in training (at prediction, or at a warm start) gets the population
      weights ``weights_``.
    * A group with one row gets that row's responsibilities as weights; EM sharpens them
      towards the class that explains the row best (the maximum-likelihood answer).
    * Collinear features (or concomitant covariates) without ridge are an error naming the
      columns; ``ridge`` (``gating_ridge``) > 0 fits them.
    * A class that loses all its responsibility — or, without ridge, whose rows no longer
      determine its coefficients — is re-seeded on the worst-explained row (the pooled
      regression moved through that row, the weight of one sample); such iterations are
      exempt from the monotonicity check.

    :meth:`score` is the mean log-likelihood per sample, as for every emkit mixture (so
    that cross-validation compares mixtures by likelihood); the :math:`R^2` of the mixture
    mean is ``sklearn.metrics.r2_score(y, model.predict(X))``. Data are NumPy arrays
    (or array-likes, DataFrames) computed in float64.

    :meth:`partial_fit` fits Gaussian regressions with constant or per-group weights online
    (online EM on their additive statistics); the Newton steps of the other families and of
    the gating cannot be taken on a stream (see the method).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import MixtureOfRegressions
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (400, 1))
    >>> labels = rng.integers(0, 2, 400)
    >>> y = np.where(labels == 0, 2 * X[:, 0] + 1, -3 * X[:, 0]) + 0.1 * rng.normal(size=400)
    >>> model = MixtureOfRegressions(2, n_init=3, random_state=0).fit(X, y)
    >>> np.sort(model.coef_.ravel()).round(1)
    array([-3.,  2.])
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "family": [StrOptions(set(FAMILIES))],
        "noise": [StrOptions({"component", "shared"})],
        "fit_intercept": ["boolean"],
        "ridge": [Interval(Real, 0.0, None, closed="left")],
        "gating_ridge": [Interval(Real, 0.0, None, closed="left")],
        "reg_noise": [Interval(Real, 0.0, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random"})],
        "newton_steps": [Interval(Integral, 1, None, closed="left")],
        "weights_init": ["array-like", None],
        "coef_init": ["array-like", None],
        "intercept_init": ["array-like", None],
        "scale_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "callbacks": [list, tuple, callable, None],
        "monotonic": [StrOptions({"warn", "raise", "ignore"})],
        "algorithm": [StrOptions(set(ALGORITHMS)), EStep],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        family: str = "gaussian",
        noise: str = "component",
        fit_intercept: bool = True,
        ridge: float = 0.0,
        gating_ridge: float = 0.0,
        reg_noise: float = 1e-6,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        newton_steps: int = 1,
        weights_init=None,
        coef_init=None,
        intercept_init=None,
        scale_init=None,
        random_state=None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        callbacks=None,
        monotonic: str = "warn",
        algorithm="em",
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
    ) -> None:
        self.n_components = n_components
        self.family = family
        self.noise = noise
        self.fit_intercept = fit_intercept
        self.ridge = ridge
        self.gating_ridge = gating_ridge
        self.reg_noise = reg_noise
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.newton_steps = newton_steps
        self.weights_init = weights_init
        self.coef_init = coef_init
        self.intercept_init = intercept_init
        self.scale_init = scale_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.callbacks = callbacks
        self.monotonic = monotonic
        self.algorithm = algorithm
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = self.family == "gaussian"
        tags.target_tags.single_output = True
        return tags

    # ------------------------------------------------------------------ the parts
    def _family(self):
        options = {"ridge": float(self.ridge), "intercept": bool(self.fit_intercept)}
        if self.family == "gaussian":
            options.update(noise=self.noise, reg_noise=float(self.reg_noise))
        return FAMILIES[self.family](**options)

    def _prior(self, kind: str, n_groups: int = 0, n_concomitant: int = 0):
        K = self.n_components
        if kind == "groups":
            return GroupWeights(K, n_groups)
        if kind == "gating":
            return SoftmaxGating(K, n_concomitant + 1, float(self.gating_ridge))
        return ConstantWeights(K)

    def _model(self, prior) -> ConditionalMixture:
        return ConditionalMixture(prior, self._family(), self.n_components, self.newton_steps)

    def _data(self, X, y, covariates, sample_weight=None, origins=None) -> ColumnData:
        origins = origins or {}
        n_columns = X.shape[1] + 1
        n_outputs = 1 if y is None else y.shape[1]
        concomitant = covariates["concomitant"]
        gate_columns = 0 if concomitant is None else concomitant.shape[1]
        row_width = n_columns + self.n_components * (n_outputs + 3) + gate_columns + 1
        return ColumnData(
            X, y, groups=covariates["groups"], concomitant=covariates["concomitant"],
            sample_weight=sample_weight, intercept=bool(self.fit_intercept),
            x_origin=origins.get("x"), y_origin=origins.get("y"),
            gate_origin=origins.get("gate"), chunk_size=self.chunk_size, row_width=row_width,
        )

    # ------------------------------------------------------------------ validation
    def _check_target(
        self, y, n_samples: int, *, n_outputs: int | None = None
    ) -> tuple[np.ndarray, bool]:
        """y as a float64 (n, T) array, checked for this family (errors name the row), and
        whether it was 1-D."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        try:
            array = check_array(
                y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False,
                input_name="y", ensure_min_samples=0,
            )
        except (TypeError, ValueError) as error:
            if "could not convert" in str(error) or "argument must be" in str(error):
                cells = np.asarray(y, dtype=object)
                raise _locate_non_numeric(
                    cells.reshape(len(cells), -1), "y", error
                ) from error
            raise
        if array.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got an array of shape {array.shape}.")
        if array.shape[0] != n_samples:
            raise ValueError(
                f"y has {array.shape[0]} rows but X has {n_samples}: they must have the same "
                "number of samples."
            )
        matrix = array.reshape(n_samples, -1)
        check_finite(matrix, "y")
        if n_outputs is not None and matrix.shape[1] != n_outputs:
            raise ValueError(
                f"y has {matrix.shape[1]} outputs, but {type(self).__name__} was fitted with "
                f"{n_outputs}."
            )
        if self.family != "gaussian":
            if matrix.shape[1] != 1:
                raise ValueError(
                    f"family={self.family!r} takes a 1-D y, got {matrix.shape[1]} outputs."
                )
            values = matrix[:, 0]
            if self.family == "logistic":
                bad = np.flatnonzero((values != 0) & (values != 1))
                need = "0 or 1"
            else:
                bad = np.flatnonzero(values < 0)
                need = "non-negative (counts)"
            if bad.size:
                raise ValueError(
                    f"y must be {need} for family={self.family!r}; row {bad[0]} holds "
                    f"{float(values[bad[0]])!r}."
                )
        return matrix, array.ndim == 1

    def _check_covariates(self, groups, concomitant, n_samples: int, *, fitting: bool) -> dict:
        """Group codes and concomitant covariates, checked against the fitted prior."""
        if groups is not None and concomitant is not None:
            raise ValueError(
                "Pass groups= or concomitant=, not both: the class prior is either one "
                "weight vector per group or a softmax gating on covariates."
            )
        labels = None if groups is None else _check_groups(groups, n_samples)
        covariates = {"groups": None, "concomitant": None, "labels": None}
        if concomitant is not None:
            names = getattr(concomitant, "columns", None)
            covariates["concomitant"] = _check_concomitant(concomitant, n_samples)
            covariates["names"] = None if names is None else [str(name) for name in names]
        if fitting:
            if labels is not None:
                covariates["labels"], codes = np.unique(labels, return_inverse=True)
                covariates["groups"] = codes.reshape(-1).astype(np.intp)
            return covariates
        kind = self.prior_
        given = "groups" if labels is not None else (
            "concomitant" if concomitant is not None else None
        )
        wanted = {"constant": None, "groups": "groups", "gating": "concomitant"}[kind]
        if given != wanted:
            if wanted is None:
                raise ValueError(
                    f"This model was fitted without groups or concomitant covariates; do not "
                    f"pass {given}=."
                )
            extra = (
                " (groups not seen in training get the population weights)"
                if wanted == "groups" else ""
            )
            raise ValueError(
                f"This model was fitted with {wanted}=; pass {wanted}= for these rows too"
                f"{extra}."
            )
        if labels is not None:
            covariates["groups"] = _encode_groups(labels, self.groups_)
        if covariates["concomitant"] is not None:
            expected = self.gating_coef_.shape[1]
            found = covariates["concomitant"].shape[1]
            if found != expected:
                raise ValueError(
                    f"concomitant has {found} columns, but the gating was fitted with "
                    f"{expected}."
                )
        return covariates

    def _check_initial_values(self, n_features: int, n_outputs: int, single: bool) -> dict:
        K = self.n_components
        values = {}
        output_shape = () if single else (n_outputs,)
        if self.weights_init is not None:
            weights = check_array(
                self.weights_init, ensure_2d=False, dtype=np.float64, input_name="weights_init"
            )
            if weights.shape[-1:] != (K,) or weights.ndim > 2:
                raise ValueError(
                    f"The parameter 'weights_init' should have the shape ({K},) (or one row "
                    f"per group, (n_groups, {K})), but got {weights.shape}."
                )
            if (weights < 0).any():
                raise ValueError("The parameter 'weights_init' must be non-negative.")
            sums = weights.sum(axis=-1)
            if not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
                raise ValueError(
                    "The parameter 'weights_init' should be normalized (each row summing to "
                    f"1), but got sums {np.round(sums, 5)}."
                )
            values["weights"] = weights / weights.sum(axis=-1, keepdims=True)
        if self.coef_init is not None:
            values["coef"] = _checked_shape(
                self.coef_init, "coef_init", (K, *output_shape, n_features)
            ).reshape(K, n_outputs, n_features)
        if self.intercept_init is not None:
            if not self.fit_intercept:
                raise ValueError("intercept_init is given but fit_intercept=False.")
            values["intercept"] = _checked_shape(
                self.intercept_init, "intercept_init", (K, *output_shape)
            ).reshape(K, n_outputs)
        if self.scale_init is not None:
            if self.family != "gaussian":
                raise ValueError(
                    f"scale_init applies to family='gaussian' only, not {self.family!r}."
                )
            scale = _checked_shape(self.scale_init, "scale_init", (K, *output_shape))
            scale = scale.reshape(K, n_outputs)
            if (scale <= 0).any():
                raise ValueError("The parameter 'scale_init' must be positive.")
            if self.noise == "shared" and not np.allclose(scale, scale[:1]):
                raise ValueError(
                    "With noise='shared', every row of 'scale_init' must be the same."
                )
            values["scale"] = scale
        return values

    def _has_all_initial_values(self) -> bool:
        return (
            self.weights_init is not None
            and self.coef_init is not None
            and (self.intercept_init is not None or not self.fit_intercept)
            and (self.scale_init is not None or self.family != "gaussian")
        )

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, concomitant=None, sample_weight=None):
        """Estimate the regressions and the class prior by EM.

        The class prior is chosen by the arguments: constant weights without ``groups``
        and ``concomitant``, one weight vector per group with ``groups``, a softmax gating
        with ``concomitant``. Runs ``n_init`` initialisations and keeps the one with the
        highest final log-likelihood; each runs until the mean log-likelihood per sample
        changes by less than ``tol`` or ``max_iter`` iterations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The features F.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The observations (several outputs for the Gaussian family only).
        groups : array-like of shape (n_samples,), default=None
            The group ID of every row (numbers or strings, no missing values).
        concomitant : array-like of shape (n_samples, n_covariates), default=None
            Covariates w of the gating :math:`p(c \\mid w)` (1-D: one covariate).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating the row.

        Returns
        -------
        self
        """
        warm = self.warm_start and hasattr(self, "converged_")
        X = to_numpy(check_data(self, X, reset=not warm, ensure_min_samples=2), np.float64)
        n_samples, n_features = X.shape
        y, single = self._check_target(y, n_samples)
        check_n_samples(X, self.n_components)
        if sample_weight is not None:
            sample_weight = to_numpy(check_sample_weight(sample_weight, X), np.float64)
        covariates = self._check_covariates(groups, concomitant, n_samples, fitting=True)
        kind = _prior_kind(covariates)
        if warm:
            self._check_same_kind(kind, y, single, covariates, "warm_start=True")
        initial = self._check_initial_values(n_features, y.shape[1], single)
        callbacks = as_callbacks(self.callbacks)
        origins = self._origins(X, y, covariates["concomitant"], sample_weight)
        data = self._data(X, y, covariates, sample_weight, origins)
        self._check_design(data, covariates)
        prior = self._prior(
            kind,
            n_groups=0 if covariates["labels"] is None else len(covariates["labels"]),
            n_concomitant=0 if covariates["concomitant"] is None
            else covariates["concomitant"].shape[1],
        )
        model = self._model(prior)
        random_state = check_random_state(self.random_state)
        strategy = get_strategy(self.algorithm)

        def view(params):
            return self._public_view(params, origins, single)

        best: EMResult | None = None
        for init in range(1 if warm else self.n_init):
            if self.verbose:
                print(f"Initialization {init}")
            if warm:
                params = self._fitted_params(origins, covariates["labels"])
            else:
                params = self._initial_params(
                    model, data, X, y, sample_weight, covariates, origins, initial, random_state
                )
            result = run_em(
                model, data, params,
                max_iter=self.max_iter, tol=self.tol, monotonic=self.monotonic,
                callbacks=callbacks, view=view, verbose=self.verbose,
                verbose_interval=self.verbose_interval, dtype=np.float64,
                strategy=strategy, seed=_seed(strategy, random_state),
            )
            if self.verbose:
                state = "converged" if result.converged else "did not converge"
                print(f"Initialization {state}. lower bound {_final_bound(result)!r}.")
            if best is None or _final_bound(result) > _final_bound(best):
                best = result
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                f"Best performing initialization did not converge within max_iter="
                f"{self.max_iter} iterations (last change of the mean log-likelihood above "
                f"tol={self.tol}). Try different init parameters, increase max_iter or tol, or "
                "check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(best.params, origins, single, kind, covariates["labels"])
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bounds_ = list(best.lower_bounds)
        self.lower_bound_ = _final_bound(best)
        self._online = None
        return self

    def _check_same_kind(self, kind: str, y, single: bool, covariates: dict, what: str) -> None:
        """Refuse data of another kind than the fitted model's (prior, shape of y, number
        of concomitant covariates); ``what`` names the call that continues the fit."""
        if (
            kind != self.prior_
            or self._output_shape() != _output_shape(y, single)
            or (kind == "gating"
                and covariates["concomitant"].shape[1] != self.gating_coef_.shape[1])
        ):
            raise ValueError(
                f"{what} needs the same kind of data as the last fit: the same class prior "
                "(groups, concomitant or neither), the same shape of y and the same number "
                "of concomitant covariates."
            )

    # ------------------------------------------------------------------ online
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, groups=None, concomitant=None, sample_weight=None):
        r"""One step of online EM (Cappé and Moulines 2009) on the mini-batch ``(X, y)``.

        An E-step on the batch at the current parameters (with ``algorithm``'s strategy),
        then :math:`s_t = (1 - \rho_t)\, s_{t-1} + \rho_t\, S(X, y)/W(X, y)` on the
        normalised statistics (:math:`N_k`, :math:`A_k`, :math:`b_k`, :math:`c_k` and the
        class counts, or the group × class table), :math:`\rho_t = (t + t_0)^{-\kappa}`
        (``learning_offset``, ``learning_decay``), and the closed-form M-step on
        :math:`N s_t`, :math:`N` the weight seen so far in the stream (the statistics of the
        rows seen, at their scale, so that ``ridge`` weighs as in :meth:`fit` on them).

        The first call of a stream continues from the fitted parameters, or, on an unfitted
        model, starts as :meth:`fit` would on this batch (``init_params`` and the starting
        values; the batch must then hold at least ``n_components`` rows and determine the
        regressions). :meth:`fit` ends the stream. Groups not seen before join the stream
        with the population weights; classes are not re-seeded.

        Only Gaussian regressions with constant or per-group weights can be fitted online:
        their M-step is a closed form of statistics that add up, while the logistic and
        Poisson regressions and the softmax gating (``concomitant``) take checked Newton
        steps, whose gradient and information hold at the coefficients of one pass and
        whose check revisits the data with that pass's responsibilities, which a stream
        does not keep. Those raise a ``ValueError`` before any work.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        groups : array-like of shape (n_samples,), default=None
            As for :meth:`fit`; every batch of a stream passes groups, or none does.
        concomitant : None
            Not supported online (see above).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
            With ``n_steps_`` (steps of this stream), ``lower_bound_`` (the batch's mean
            log-likelihood per sample at the parameters before the step, plus the ridge
            penalty per sample; the classification log-likelihood for ``'hard'``) and
            ``lower_bounds_`` (that of every step of the stream).
        """
        if self.family != "gaussian":
            raise ValueError(
                f"partial_fit cannot fit family={self.family!r}: its regressions take checked "
                "Newton steps, whose gradient and information hold at the coefficients of one "
                "pass (they do not average over mini-batches as sufficient statistics do) and "
                "whose check revisits the data with that pass's responsibilities, which a "
                "stream does not keep. Use fit, or family='gaussian'."
            )
        if concomitant is not None:
            raise ValueError(
                "partial_fit cannot fit a softmax gating (concomitant=): its M-step takes "
                "checked Newton steps that revisit the data of one pass, which a stream does "
                "not keep. Use fit, or groups= for class weights per group."
            )
        fitted = hasattr(self, "lower_bound_")
        X = to_numpy(check_data(self, X, reset=not fitted), np.float64)
        n_samples = X.shape[0]
        outputs = None
        if fitted:
            shape = self._output_shape()
            outputs = shape[0] if shape else 1
        y, single = self._check_target(y, n_samples, n_outputs=outputs)
        if sample_weight is not None:
            sample_weight = to_numpy(check_sample_weight(sample_weight, X), np.float64)
        covariates = self._check_covariates(groups, None, n_samples, fitting=True)
        kind = _prior_kind(covariates)
        if fitted:
            self._check_same_kind(kind, y, single, covariates, "partial_fit")
            if kind == "groups" and _numeric(self.groups_) != _numeric(covariates["labels"]):
                raise ValueError(
                    "groups of this batch are of another kind (numbers or strings) than the "
                    "groups of the fit it continues."
                )
        state = getattr(self, "_online", None)
        if state is None:
            state = self._start_stream(X, y, single, sample_weight, covariates, kind, fitted)
        if kind == "groups":
            covariates["groups"] = self._stream_groups(state, covariates)
        origins = state.origin
        data = self._data(X, y, covariates, sample_weight, origins)
        params, bound = state.step(data, self._fitted_params(origins), get_strategy(self.algorithm))
        self._online = state
        self._set_fitted(params, origins, single, kind, getattr(self, "groups_", None))
        self.n_steps_ = state.n_steps
        self.lower_bounds_.append(bound)
        self.lower_bound_ = bound
        self.converged_ = False
        return self

    def _start_stream(self, X, y, single, sample_weight, covariates, kind, fitted) -> OnlineEM:
        """The state of a new stream, in the frame of its first batch; an unfitted model
        first gets the starting parameters of :meth:`fit` on that batch."""
        origins = self._origins(X, y, None, sample_weight)
        random_state = check_random_state(self.random_state)
        if not fitted:
            check_n_samples(X, self.n_components)
            initial = self._check_initial_values(X.shape[1], y.shape[1], single)
            data = self._data(X, y, covariates, sample_weight, origins)
            self._check_design(data, covariates)
            labels = covariates["labels"]
            model = self._model(self._prior(kind, n_groups=0 if labels is None else len(labels)))
            params = self._initial_params(
                model, data, X, y, sample_weight, covariates, origins, initial, random_state
            )
            self._set_fitted(params, origins, single, kind, labels)
        self.lower_bounds_ = []
        return OnlineEM(
            self._model(self._fitted_prior()), float(self.learning_decay),
            float(self.learning_offset), origin=origins,
            seed=_seed(get_strategy(self.algorithm), random_state), monotonic=self.monotonic,
            data_scale=True,
        )

    def _stream_groups(self, state: OnlineEM, covariates: dict) -> np.ndarray:
        """The batch's group codes among the stream's groups, after adding the groups not
        seen before: their weights start at the population weights ``weights_`` and their
        statistics at 0 (rows of ``group_weights_`` and of the stream's table)."""
        known, labels = self.groups_, covariates["labels"]
        new = np.setdiff1d(labels, known)
        if new.size:
            merged = np.union1d(known, new)
            kept = np.searchsorted(merged, known)
            table = np.tile(self.weights_, (merged.size, 1))
            table[kept] = self.group_weights_
            self.groups_, self.group_weights_ = merged, table
            state.model = self._model(self._fitted_prior())
            if state.stats is not None:
                counts = np.zeros((merged.size, self.n_components))
                counts[kept] = state.stats.stats.prior.resp_sum
                state.stats = Expectation(dataclasses.replace(
                    state.stats.stats, prior=GroupStatistics(counts)
                ))
        return np.searchsorted(self.groups_, labels)[covariates["groups"]]

    def _origins(self, X, y, concomitant, sample_weight) -> dict[str, np.ndarray]:
        """The shifts of the engine frame: weighted means, for designs with an intercept."""
        origins = {}
        if self.fit_intercept:
            origins["x"] = np.average(X, axis=0, weights=sample_weight)
            if self.family == "gaussian":
                origins["y"] = np.average(y, axis=0, weights=sample_weight)
        if concomitant is not None:
            origins["gate"] = np.average(concomitant, axis=0, weights=sample_weight)
        return origins

    def _check_design(self, data: ColumnData, covariates: dict) -> None:
        """Refuse collinear features (without ridge) and concomitant covariates (without
        gating ridge), naming the columns."""
        if self.ridge > 0 and (covariates["concomitant"] is None or self.gating_ridge > 0):
            return
        gram, gate_gram = data.gram()
        if self.ridge == 0:
            names = _column_names(
                gram.shape[0] - self.fit_intercept, getattr(self, "feature_names_in_", None)
            )
            if self.fit_intercept:
                names.append("(intercept)")
            check_collinearity(
                gram, names, "X", "set ridge > 0", intercept=bool(self.fit_intercept)
            )
        if gate_gram is not None and self.gating_ridge == 0:
            names = _column_names(gate_gram.shape[0] - 1, covariates.get("names"))
            names.append("(intercept)")
            check_collinearity(
                gate_gram, names, "concomitant", "set gating_ridge > 0", intercept=True
            )

    def _initial_labels(self, X, y, sample_weight, random_state) -> np.ndarray:
        """Initial class labels: k-means on the standardised ``[X, y]``, or uniform."""
        K = self.n_components
        if self.init_params == "random":
            return random_state.randint(K, size=X.shape[0])
        columns = np.hstack([X, y])
        spread = columns.std(axis=0)
        columns = (columns - columns.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        return (
            _SKLearnKMeans(n_clusters=K, n_init=1, random_state=random_state)
            .fit(columns, sample_weight=sample_weight)
            .labels_
        )

    def _initial_params(
        self, model, data, X, y, sample_weight, covariates, origins, initial, random_state
    ) -> StructuredParams:
        """Starting parameters: an M-step on initial labels, then the user's values."""
        if self._has_all_initial_values():
            return self._apply_initial_values(model, None, initial, covariates, origins)
        labels = self._initial_labels(X, y, sample_weight, random_state)
        classes = np.arange(self.n_components)

        def resp_of(start, rows):
            return (labels[start : start + len(rows), None] == classes).astype(np.float64)

        params = model.initialize(data.statistics(model, resp_of))
        return self._apply_initial_values(model, params, initial, covariates, origins)

    def _apply_initial_values(
        self, model, params: StructuredParams | None, initial: dict, covariates: dict, origins
    ) -> StructuredParams:
        """``params`` (engine frame) with the user's starting values in their place."""
        prior = None if params is None else params.prior
        if "weights" in initial:
            prior = self._initial_prior(model.prior, initial["weights"], covariates)
        if params is None:
            coef = intercept = scale = None
        else:
            coef, intercept, scale = self._components_to_public(params.components, origins)
        coef = initial.get("coef", coef)
        intercept = initial.get("intercept", intercept)
        scale = initial.get("scale", scale)
        if intercept is None:
            intercept = np.zeros(coef.shape[:2])
        components = self._components_to_engine(coef, intercept, scale, origins)
        return StructuredParams(prior, components)

    def _initial_prior(self, prior, weights: np.ndarray, covariates: dict):
        K = self.n_components
        if isinstance(prior, GroupWeights):
            n_groups = prior.n_groups
            if weights.ndim == 1:
                weights = np.tile(weights, (n_groups, 1))
            elif weights.shape[0] != n_groups:
                raise ValueError(
                    f"weights_init has {weights.shape[0]} rows but groups has {n_groups} "
                    "distinct labels: give one row per group, in the order of the sorted "
                    "labels, or one row for all."
                )
            sizes = np.bincount(covariates["groups"], minlength=n_groups)
            return GroupParams(weights, sizes @ weights / sizes.sum())
        if weights.ndim != 1:
            raise ValueError(
                f"weights_init of shape {weights.shape} has one row per group, but fit got no "
                f"groups: give shape ({K},)."
            )
        if isinstance(prior, SoftmaxGating):
            if (weights <= 0).any():
                raise ValueError(
                    "With concomitant covariates, 'weights_init' must be positive: a softmax "
                    "gating gives every class a positive probability."
                )
            return prior.from_weights(weights)
        return ClassWeights(weights)

    # ------------------------------------------------------------------ frames
    def _components_to_public(self, components: RegressionParams, origins: dict):
        """Slopes (K, T, P), intercepts (K, T) and scales (K, T) in the data's frame."""
        coef = components.coef
        if self.fit_intercept:
            slopes = coef[:, :, :-1]
            intercept = coef[:, :, -1] + origins.get("y", 0.0)
            if "x" in origins:
                intercept = intercept - slopes @ origins["x"]
        else:
            slopes = coef
            intercept = np.zeros(coef.shape[:2])
        scale = None if components.variance is None else np.sqrt(components.variance)
        return slopes, intercept, scale

    def _components_to_engine(self, slopes, intercept, scale, origins) -> RegressionParams:
        """Engine coefficients (K, T, P+1) from slopes, intercepts and scales."""
        variance = None if scale is None else scale**2
        if not self.fit_intercept:
            return RegressionParams(np.array(slopes, dtype=np.float64), variance)
        shifted = intercept - origins.get("y", 0.0)
        if "x" in origins:
            shifted = shifted + slopes @ origins["x"]
        return RegressionParams(np.concatenate([slopes, shifted[:, :, None]], axis=2), variance)

    def _public_view(self, params: StructuredParams, origins: dict, single: bool) -> dict:
        """Fitted-attribute names and values for ``params`` in the engine frame."""
        slopes, intercept, scale = self._components_to_public(params.components, origins)
        view = {}
        if single:
            view["coef_"], view["intercept_"] = slopes[:, 0, :], intercept[:, 0]
        else:
            view["coef_"], view["intercept_"] = slopes, intercept
        if scale is not None:
            view["scale_"] = scale[:, 0] if single else scale
        prior = params.prior
        view["weights_"] = prior.population
        if isinstance(prior, GroupParams):
            view["group_weights_"] = prior.weights
        if isinstance(prior, GatingParams):
            gating_slopes = prior.coef[:, :-1]
            view["gating_coef_"] = gating_slopes
            view["gating_intercept_"] = prior.coef[:, -1] - gating_slopes @ origins["gate"]
        return view

    def _set_fitted(self, params, origins, single, kind, labels) -> None:
        for name in ("scale_", "groups_", "group_weights_", "gating_coef_", "gating_intercept_"):
            if hasattr(self, name):
                delattr(self, name)
        for name, value in self._public_view(params, origins, single).items():
            setattr(self, name, np.array(value, dtype=np.float64))
        self.prior_ = kind
        if labels is not None:
            self.groups_ = labels

    def _output_shape(self) -> tuple[int, ...]:
        return self.coef_.shape[1:2] if self.coef_.ndim == 3 else ()

    def _fitted_params(self, origins: dict, labels=None) -> StructuredParams:
        """Engine parameters from the fitted attributes, in the frame of ``origins``; with
        ``labels``, group weights for those labels (population weights for new ones)."""
        coef = np.asarray(self.coef_, dtype=np.float64)
        K = self.n_components
        slopes = coef.reshape(K, -1, coef.shape[-1])
        n_outputs = slopes.shape[1]
        intercept = np.asarray(self.intercept_, dtype=np.float64).reshape(K, n_outputs)
        scale = getattr(self, "scale_", None)
        if scale is not None:
            scale = np.asarray(scale, dtype=np.float64).reshape(K, n_outputs)
        components = self._components_to_engine(slopes, intercept, scale, origins)
        population = np.asarray(self.weights_, dtype=np.float64)
        if self.prior_ == "groups":
            table = np.asarray(self.group_weights_, dtype=np.float64)
            if labels is not None:
                codes = _encode_groups(labels, self.groups_)
                table = np.vstack([table, population])[codes]
            prior = GroupParams(table, population)
        elif self.prior_ == "gating":
            gating_slopes = np.asarray(self.gating_coef_, dtype=np.float64)
            shift = origins.get("gate", np.zeros(gating_slopes.shape[1]))
            gating_intercept = np.asarray(self.gating_intercept_) + gating_slopes @ shift
            prior = GatingParams(
                np.hstack([gating_slopes, gating_intercept[:, None]]), population
            )
        else:
            prior = ClassWeights(population)
        return StructuredParams(prior, components)

    def _fitted_prior(self):
        if self.prior_ == "groups":
            return self._prior("groups", n_groups=len(self.groups_))
        if self.prior_ == "gating":
            return self._prior("gating", n_concomitant=self.gating_coef_.shape[1])
        return self._prior("constant")

    # ------------------------------------------------------------------ prediction
    def _prepared(self, X, y=None, groups=None, concomitant=None):
        check_is_fitted(self)
        X = to_numpy(check_data(self, X, reset=False), np.float64)
        n_samples = X.shape[0]
        if y is not None:
            shape = self._output_shape()
            y, _ = self._check_target(y, n_samples, n_outputs=shape[0] if shape else 1)
        covariates = self._check_covariates(groups, concomitant, n_samples, fitting=False)
        model = self._model(self._fitted_prior())
        return model, self._data(X, y, covariates), self._fitted_params({})

    def predict_proba(self, X, y=None, *, groups=None, concomitant=None) -> np.ndarray:
        r"""The probabilities of the classes, (n_samples, K).

        With ``y``: the posterior, the notes' :math:`\gamma(c)`,
        :math:`p(c_n = k \mid y_n, x_n, ID_n) \propto p(y_n \mid x_n, c_n = k)\,
        p(c_n = k \mid ID_n)`. Without: the prior :math:`p(c_n = k \mid ID_n)` (or
        :math:`p(c_n = k \mid w_n)`, or :math:`\pi_k`), the class probabilities before y is
        seen.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        groups : array-like of shape (n_samples,), default=None
            Required when the model was fitted with groups; unseen groups get ``weights_``.
        concomitant : array-like of shape (n_samples, n_covariates), default=None
            Required when the model was fitted with concomitant covariates.
        """
        model, data, params = self._prepared(X, y, groups, concomitant)
        if y is None:
            return data.map_rows(lambda rows: np.exp(model.log_prior(rows, params)))
        return data.map_rows(lambda rows: log_normalize(model.log_joint(rows, params))[0])

    def predict(self, X, *, groups=None, concomitant=None, return_components: bool = False):
        r"""The mixture mean :math:`E[y \mid x, ID] = \sum_k p(c = k \mid ID)\, \mu_k(x)`.

        :math:`\mu_k(x)` is the mean of regression k: :math:`B_k \tilde x` (Gaussian),
        :math:`\operatorname{sigm}(B_k \tilde x)` (logistic: the probability of 1),
        :math:`e^{B_k \tilde x}` (Poisson).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups, concomitant : array-like, default=None
            As for :meth:`predict_proba`.
        return_components : bool, default=False
            Also return every component's mean.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        component_means : ndarray of shape (n_samples, K) or (n_samples, K, n_outputs)
            Only with ``return_components=True``.
        """
        model, data, params = self._prepared(X, None, groups, concomitant)

        def both(rows):
            means = model.family.mean(rows.design, params.components)
            prior = np.exp(model.log_prior(rows, params))
            return np.concatenate([means, prior[:, :, None]], axis=2)

        stacked = data.map_rows(both)
        components, prior = stacked[:, :, :-1], stacked[:, :, -1]
        mean = np.einsum("nk,nkt->nt", prior, components)
        if self.coef_.ndim == 2:
            mean, components = mean[:, 0], components[:, :, 0]
        return (mean, components) if return_components else mean

    def log_likelihood(self, X, y, *, groups=None, concomitant=None) -> np.ndarray:
        r"""Per row, :math:`\log p(y_n \mid x_n, ID_n) = \log \sum_k p(c_n = k \mid ID_n)\,
        p(y_n \mid x_n, c_n = k)`; shape (n_samples,)."""
        model, data, params = self._prepared(X, y, groups, concomitant)
        return data.map_rows(lambda rows: model.log_likelihood(rows, params))

    def score(self, X, y, sample_weight=None, *, groups=None, concomitant=None) -> float:
        """The mean log-likelihood per sample (weighted by ``sample_weight``).

        On the training data it equals ``lower_bound_`` (without ridge). For the
        :math:`R^2` of the mixture mean use ``sklearn.metrics.r2_score(y, predict(X))``.
        """
        log_lik = self.log_likelihood(X, y, groups=groups, concomitant=concomitant)
        if sample_weight is None:
            return float(log_lik.mean())
        weights = check_sample_weight(sample_weight, log_lik[:, None])
        return float(np.average(log_lik, weights=to_numpy(weights, np.float64)))

    def _n_parameters(self) -> int:
        check_is_fitted(self)
        return self._model(self._fitted_prior()).n_parameters(self._fitted_params({}))

    def bic(self, X, y, *, groups=None, concomitant=None) -> float:
        r"""Bayesian information criterion :math:`-2 \log L + p \log n` (lower is better)."""
        log_lik = self.log_likelihood(X, y, groups=groups, concomitant=concomitant)
        return float(-2.0 * log_lik.sum() + self._n_parameters() * np.log(len(log_lik)))

    def aic(self, X, y, *, groups=None, concomitant=None) -> float:
        r"""Akaike information criterion :math:`-2 \log L + 2p` (lower is better)."""
        log_lik = self.log_likelihood(X, y, groups=groups, concomitant=concomitant)
        return float(-2.0 * log_lik.sum() + 2.0 * self._n_parameters())

    def sample(self, X, *, groups=None, concomitant=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw y for the rows ``X``: a class from the prior, then y from its regression.

        Random numbers come from ``random_state``.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        classes : ndarray of int of shape (n_samples,)
        """
        model, data, params = self._prepared(X, None, groups, concomitant)
        rng = check_random_state(self.random_state)
        prior = data.map_rows(lambda rows: np.exp(model.log_prior(rows, params)))
        cumulative = np.cumsum(prior, axis=1)
        draws = rng.uniform(size=(prior.shape[0], 1)) * cumulative[:, -1:]
        classes = np.minimum((cumulative < draws).sum(axis=1), self.n_components - 1)
        design = data.map_rows(lambda rows: rows.design)
        y = model.family.sample(design, classes, params.components, rng)
        return (y[:, 0] if self.coef_.ndim == 2 else y), classes


def _final_bound(result: EMResult) -> float:
    return result.lower_bounds[-1] if result.lower_bounds else result.initial_lower_bound


def _output_shape(y: np.ndarray, single: bool) -> tuple[int, ...]:
    return () if single else (y.shape[1],)


def _prior_kind(covariates: dict) -> str:
    if covariates["groups"] is not None:
        return "groups"
    if covariates["concomitant"] is not None:
        return "gating"
    return "constant"


def _column_names(n_columns: int, names) -> list[str]:
    if names is None:
        return [str(j) for j in range(n_columns)]
    return [f"{j} ({names[j]!r})" for j in range(n_columns)]


def _is_missing(value) -> bool:
    """None, NaN, NaT or pandas' NA (whose truth value is ambiguous)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _check_groups(groups, n_samples: int) -> np.ndarray:
    """Group labels as a 1-D array of numbers or strings; a missing one is an error naming
    the row."""
    labels = np.asarray(groups)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"groups must be 1-D (one ID per row), got shape {labels.shape}.")
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"groups has {labels.shape[0]} entries but X has {n_samples} rows: give one group "
            "ID per row."
        )
    if labels.dtype.kind in "fcO":
        if labels.dtype.kind == "O":
            missing = np.flatnonzero([_is_missing(value) for value in labels])
        else:
            missing = np.flatnonzero(np.isnan(labels))
        if missing.size:
            row = int(missing[0])
            raise ValueError(
                f"groups has a missing value ({labels[row]!r}) at row {row} (first of "
                f"{missing.size}): every row needs a group ID. Drop these rows or give them "
                "a group of their own."
            )
    if labels.dtype.kind == "O":
        kinds = {isinstance(value, str) for value in labels}
        if len(kinds) > 1:
            raise ValueError("groups mixes strings and other values: use one kind of ID.")
        labels = labels.astype(str).astype(object) if kinds == {True} else np.array(
            labels.tolist()
        )
    return labels


def _numeric(labels: np.ndarray) -> bool:
    """Whether group labels are numbers (else strings)."""
    return np.asarray(labels).dtype.kind in "biuf"


def _encode_groups(labels: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Codes of ``labels`` among the sorted ``known`` labels, -1 for the unknown."""
    codes = np.full(labels.shape[0], -1, dtype=np.intp)
    known = np.asarray(known)
    numeric = {_numeric(labels), _numeric(known)}
    if len(numeric) > 1 or known.size == 0:
        return codes
    position = np.clip(np.searchsorted(known, labels), 0, known.size - 1)
    found = known[position] == labels
    codes[found] = position[found]
    return codes


def _check_concomitant(concomitant, n_samples: int) -> np.ndarray:
    """Concomitant covariates as a float64 (n, Q) array; errors name row and column."""
    names = getattr(concomitant, "columns", None)
    try:
        array = check_array(
            concomitant, ensure_2d=False, dtype=np.float64, ensure_all_finite=False,
            input_name="concomitant", ensure_min_samples=0,
        )
    except (TypeError, ValueError) as error:
        if "could not convert" in str(error) or "argument must be" in str(error):
            raise _locate_non_numeric(concomitant, "concomitant", error) from error
        raise
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"concomitant must be 1-D or 2-D, got shape {array.shape}.")
    if array.shape[0] != n_samples:
        raise ValueError(
            f"concomitant has {array.shape[0]} rows but X has {n_samples}: give the "
            "covariates of every row."
        )
    check_finite(array, "concomitant", None if names is None else [str(n) for n in names])
    return array


def _checked_shape(value, name: str, shape: tuple) -> np.ndarray:
    array = check_array(
        value, ensure_2d=False, allow_nd=True, dtype=np.float64, input_name=name,
        ensure_min_samples=0,
    )
    if array.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape {shape}, but got {array.shape}."
        )
    return array
