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
from emkit.em.loop import EMResult, run_em
from emkit.executors.columns import ColumnData, Expectation
from emkit.executors.memory import PassResult
from emkit.io import SaveLoadMixin
from emkit.latent.weights import (
    ClassWeights,
    ConstantWeights,
    GatingParams,
    GroupParams,
    GroupWeights,
    SoftmaxGating,
)

__all__ = ["ConditionalMixture", "MixtureOfRegressions", "StructuredParams"]

#: Halvings of a Newton step before the step is abandoned for this M-step.
MAX_HALVINGS = 30
#: A Newton step whose predicted increase of Q is below this many machine epsilons of |Q|
#: is not taken: the unit is at its maximum to rounding.
NEGLIGIBLE_INCREASE = 1e3


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
    :data:`MAX_HALVINGS` times, after which the unit keeps its parameters. Each checked
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

    def _responsibilities(self, rows: Rows, params: StructuredParams) -> np.ndarray:
        resp = log_normalize(self.log_joint(rows, params))[0]
        return resp if rows.weight is None else resp * rows.weight[:, None]

    def expectation(
        self, rows: Rows, params: StructuredParams
    ) -> tuple[StructuredStatistics, float, float]:
        """Exact E-step on a chunk: statistics, summed log-likelihood and summed weight."""
        log_prior = self.log_prior(rows, params)
        features = self.family.features(rows.design, rows.y, params.components)
        resp, log_norm = log_normalize(
            log_prior + self.family.log_prob(features, params.components)
        )
        if rows.weight is None:
            weight = float(len(rows))
            log_likelihood = float(log_norm.sum())
        else:
            resp = resp * rows.weight[:, None]
            weight = float(rows.weight.sum())
            with np.errstate(invalid="ignore"):
                log_likelihood = float(
                    np.where(rows.weight > 0, log_norm * rows.weight, 0.0).sum()
                )
        stats = StructuredStatistics(
            self.prior.statistics(rows, resp, log_prior),
            self.family.statistics(rows.design, rows.y, features, resp),
        )
        return stats, log_likelihood, weight

    def trial_statistics(
        self, rows: Rows, params: StructuredParams, trial: StructuredParams,
        *, prior: bool, components: bool,
    ) -> StructuredStatistics:
        """Statistics at ``trial`` with the responsibilities at ``params``, for the parts
        asked for."""
        resp = self._responsibilities(rows, params)
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

    def maximize(self, expectation: Expectation) -> StructuredParams:
        """M-step: closed-form parts exactly, the others by checked Newton steps."""
        stats = expectation.stats
        current = expectation.params
        prior = self.prior.maximize(stats.prior, current.prior)
        components = self.family.maximize(stats.components, current.components)
        newton = self._newton_parts()
        if not newton:
            return StructuredParams(prior, components)
        params = StructuredParams(
            current.prior if "prior" in newton else prior,
            current.components if "components" in newton else components,
        )
        proposals = {"prior": prior, "components": components}
        for step in range(self.newton_steps):
            if step:
                proposals = {
                    name: part.maximize(getattr(stats, name), getattr(params, name))
                    for name, part in newton.items()
                }
            params, stats, moved = self._checked_step(expectation, params, stats, proposals)
            if not moved:
                break
        return params

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
            predicted = _predicted_increase(part_stats, part_params, proposals[name], part)
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


_EPS = float(np.finfo(np.float64).eps)


def _predicted_increase(stats, params, proposal, part) -> np.ndarray:
    r"""Increase of Q predicted by the quadratic model of a Newton step, per unit:
    :math:`\tfrac12 \tilde g^\top \Delta` with :math:`\tilde g` the penalised gradient."""
    if isinstance(params, GatingParams):
        delta = (proposal.coef - params.coef)[1:].reshape(1, -1)
        mask = np.ones(params.coef.shape[1])
        mask[-1] = 0.0
        penalised = part.ridge * (params.coef[1:] * mask).reshape(1, -1)
    else:
        delta = (proposal.coef - params.coef)[:, 0, :]
        penalised = part.ridge * part.slopes(params)[:, 0, :]
    return 0.5 * ((stats.gradient - penalised) * delta).sum(axis=1)


# ---------------------------------------------------------------------- the estimator
PRIORS = ("constant", "groups", "gating")


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
        gating starts with these weights for every row (intercepts only).
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
        Rows per chunk of the E-step; ``None``: about 2**17 working numbers per chunk.
    callbacks : callable or list of callables, default=None
        Called with an :class:`emkit.em.EMIteration` after the initial E-step and every
        iteration (``params`` is a dict of fitted-attribute names to arrays); returning
        ``True`` stops the fit.
    monotonic : {'warn', 'raise', 'ignore'}, default='warn'
        What happens when the log-likelihood decreases by more than rounding explains.

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
        gate_columns = 0 if covariates["concomitant"] is None else covariates["concomitant"].shape[1]
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
                    f"{values[bad[0]]!r}."
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

