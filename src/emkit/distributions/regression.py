r"""Conditional component families: K regressions :math:`p(y \mid x, c = k)`.

A conditional family describes the observations given the hidden class and the observed
features, the factor :math:`p(X \mid C, F)` of the structured model
:math:`p(X, C, F, ID) = p(X \mid C, F)\, p(C \mid ID)\, p(ID)\, p(F)`. Every component k is a
generalised linear model on the design row :math:`\tilde x_n` (the features, followed by a
1 when there is an intercept) with coefficients :math:`B_k` and linear predictor
:math:`\eta_{nk} = B_k \tilde x_n`:

* :class:`LinearGaussian` — :math:`y_{nt} \sim \mathcal N(\eta_{nkt}, \sigma^2_{kt})`, for
  one or several outputs :math:`t` with a noise variance per component (or one shared by
  all components) and per output;
* :class:`Logistic` — :math:`y_n \in \{0, 1\}`,
  :math:`p(y_n = 1) = \operatorname{sigm}(\eta_{nk})`;
* :class:`PoissonRegression` — :math:`y_n \ge 0`, :math:`y_n \sim
  \operatorname{Poisson}(e^{\eta_{nk}})`.

The M-step maximises, for each component separately, the responsibility-weighted
log-likelihood :math:`Q_k(B_k) = \sum_n \gamma_{nk} \log p(y_n \mid \tilde x_n, B_k)` minus the
ridge penalty on the slopes (never on the intercept):

* **Gaussian: closed form.** The statistics :math:`N_k = \sum_n \gamma_{nk}`,
  :math:`A_k = \sum_n \gamma_{nk} \tilde x_n \tilde x_n^\top`,
  :math:`b_k = \sum_n \gamma_{nk} \tilde x_n y_n^\top` and
  :math:`c_{kt} = \sum_n \gamma_{nk} y_{nt}^2` add up over chunks of rows; the weighted
  least-squares solution is :math:`B_k^\top = (A_k + \lambda D)^{-1} b_k` (``D`` the diagonal
  that selects the slopes) and the noise variance
  :math:`\sigma^2_{kt} = (c_{kt} - B_{kt}^\top b_{kt}) / N_k + \epsilon`, which is the
  residual sum of squares plus :math:`\lambda \lVert \beta_{kt} \rVert^2`. This is the exact
  maximiser of the penalised expected log-likelihood
  :math:`Q_k - \sum_t \lambda \lVert \beta_{kt} \rVert^2 / (2 \sigma^2_{kt})`; the floor
  :math:`\epsilon` (``reg_noise``) keeps a component that fits a few rows exactly away from
  the singularity of the likelihood, and :meth:`LinearGaussian.regularization_gap` bounds
  what it costs.
* **Logistic and Poisson: one Newton (IRLS) step.** No closed form exists; the E-step also
  collects the gradient :math:`g_k = \sum_n \gamma_{nk} (y_n - \mu_{nk}) \tilde x_n` and the
  information :math:`I_k = \sum_n \gamma_{nk} w_{nk} \tilde x_n \tilde x_n^\top`
  (:math:`w = \mu (1 - \mu)` or :math:`\mu`) at the current coefficients, which add up like
  any statistics, and :meth:`maximize` proposes
  :math:`B_k + (I_k + \lambda D)^{-1} (g_k - \lambda D B_k)`. The caller checks that the step
  increases :math:`Q_k` (generalised EM) and halves it until it does.

Linear systems are solved after scaling the Gram matrix to a unit diagonal, by a symmetric
eigendecomposition (:func:`solve_gram`): exact for any well-posed system, and a
minimum-norm answer with its numerical rank when the system is singular.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import special

from emkit.distributions._base import Statistics

__all__ = [
    "COLLINEARITY_TOLERANCE",
    "FAMILIES",
    "ConditionalFamily",
    "LinearGaussian",
    "LinearStatistics",
    "Logistic",
    "NewtonStatistics",
    "PoissonRegression",
    "RegressionParams",
    "Rows",
    "check_collinearity",
    "select_units",
    "solve_gram",
]

_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = math.log(2.0 * math.pi)

#: Smallest eigenvalue, relative to the largest, of the unit-diagonal Gram matrix of the
#: whole design below which the columns count as collinear (coefficients not determined to
#: more than about six digits).
COLLINEARITY_TOLERANCE = 1e-10


@dataclasses.dataclass(frozen=True)
class Rows:
    """A chunk of rows of a regression problem, as the model sees it.

    Attributes
    ----------
    design : ndarray of shape (n, P)
        The features (shifted by their origin), followed by a column of ones when the model
        has an intercept.
    y : ndarray of shape (n, T) or None
        The observations (Gaussian outputs shifted by their origin); ``None`` when only
        the class prior is wanted.
    groups : ndarray of int of shape (n,) or None
        Group codes; -1 for a group not seen in training.
    gate : ndarray of shape (n, Q) or None
        The concomitant covariates (shifted), followed by a column of ones.
    weight : ndarray of shape (n,) or None
        Sample weights; ``None`` for unit weights.
    """

    design: np.ndarray
    y: np.ndarray | None = None
    groups: np.ndarray | None = None
    gate: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.design.shape[0])

    def take(self, index: np.ndarray) -> Rows:
        """The rows at ``index``."""
        return Rows(*(None if a is None else a[index] for a in dataclasses.astuple(self)))


@dataclasses.dataclass(frozen=True)
class RegressionParams:
    """Coefficients of K regressions (float64, host memory).

    Attributes
    ----------
    coef : ndarray of shape (K, T, P)
        Row ``coef[k, t]`` maps a design row to the linear predictor of output t under
        component k; with an intercept its last entry is the intercept.
    variance : ndarray of shape (K, T) or None
        Gaussian noise variances (equal rows when the noise is shared); ``None`` for the
        other families.
    """

    coef: np.ndarray
    variance: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class LinearStatistics(Statistics):
    r"""Weighted least-squares statistics per component.

    :math:`N_k = \sum_n \gamma_{nk}` (K,), :math:`A_k = \sum_n \gamma_{nk} \tilde x_n
    \tilde x_n^\top` (K, P, P), :math:`b_k = \sum_n \gamma_{nk} \tilde x_n y_n^\top`
    (K, P, T) and :math:`c_k = \sum_n \gamma_{nk} y_n^2` (K, T).
    """

    resp_sum: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray


@dataclasses.dataclass(frozen=True)
class NewtonStatistics(Statistics):
    r"""What a Newton step on :math:`Q_k` needs, at the coefficients the pass used.

    :math:`N_k` (K,), the gradient :math:`g_k` (K, P), the information :math:`I_k`
    (K, P, P) — minus the Hessian of the unpenalised :math:`Q_k` — and the value
    :math:`Q_k` (K,).
    """

    resp_sum: np.ndarray
    gradient: np.ndarray
    information: np.ndarray
    objective: np.ndarray


class ConditionalFamily(Protocol):
    """What a family of K conditional components provides.

    A family holds options only (the ridge, the noise structure); parameters are
    :class:`RegressionParams` passed in and returned. The E-step on a chunk is
    ``features(design, y, params)`` (computed once), ``log_prob(features, params)`` and,
    with the responsibilities, ``statistics(design, y, features, resp)``.
    """

    #: Whether :meth:`maximize` proposes a Newton step that the caller must check.
    newton: ClassVar[bool]

    def features(self, design: np.ndarray, y: np.ndarray, params: RegressionParams) -> Any:
        """What :meth:`log_prob` and :meth:`statistics` need of a chunk."""

    def log_prob(self, features: Any, params: RegressionParams) -> np.ndarray:
        r""":math:`\log p(y_n \mid \tilde x_n, c_n = k)`, shape (n, K)."""

    def statistics(
        self, design: np.ndarray, y: np.ndarray, features: Any, resp: np.ndarray
    ) -> Statistics:
        """Responsibility-weighted statistics of a chunk."""

    def initial_statistics(
        self, design: np.ndarray, y: np.ndarray, resp: np.ndarray
    ) -> LinearStatistics:
        """Least-squares statistics of the working response, for the first M-step."""

    def initialize(self, stats: LinearStatistics) -> RegressionParams:
        """Starting coefficients from :meth:`initial_statistics`."""

    def maximize(self, stats: Statistics, params: RegressionParams) -> RegressionParams:
        """The M-step (closed form), or a proposed Newton step from ``params``."""


def solve_gram(
    gram: np.ndarray, rhs: np.ndarray, penalty: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    r"""Solve :math:`(G + \operatorname{diag}(\text{penalty}))\, x = \text{rhs}`.

    ``G`` is symmetric positive semi-definite. It is scaled to a unit diagonal,
    :math:`S = D^{-1/2} G D^{-1/2}`, and :math:`S = V \Lambda V^\top` gives
    :math:`x = D^{-1/2} V \Lambda^{+} V^\top D^{-1/2} \text{rhs}`, where :math:`\Lambda^{+}`
    inverts the eigenvalues above :math:`P \varepsilon \lambda_{\max}` and zeroes the others
    (the minimum-norm solution of a singular system). Columns with a zero diagonal get 0.

    Parameters
    ----------
    gram : ndarray of shape (P, P)
    rhs : ndarray of shape (P, T)
    penalty : ndarray of shape (P,) or None
        Added to the diagonal (the ridge).

    Returns
    -------
    x : ndarray of shape (P, T)
    rank : int
        The numerical rank of the system (P when it is well posed).
    """
    matrix = gram if penalty is None else gram + np.diag(penalty)
    diagonal = np.diag(matrix)
    live = diagonal > 0
    solution = np.zeros_like(rhs, dtype=np.float64)
    if not live.any():
        return solution, 0
    scale = np.sqrt(diagonal[live])
    scaled = matrix[np.ix_(live, live)] / np.outer(scale, scale)
    eigenvalues, vectors = np.linalg.eigh(0.5 * (scaled + scaled.T))
    keep = eigenvalues > scaled.shape[0] * _EPS * max(eigenvalues[-1], 0.0)
    inverse = np.zeros_like(eigenvalues)
    inverse[keep] = 1.0 / eigenvalues[keep]
    projected = vectors.T @ (rhs[live] / scale[:, None])
    solution[live] = (vectors @ (inverse[:, None] * projected)) / scale[:, None]
    return solution, int(keep.sum())


def check_collinearity(
    gram: np.ndarray, names: Sequence[str], argument: str, remedy: str,
    *, intercept: bool,
) -> None:
    """Refuse a design whose columns are (nearly) linearly dependent, naming them.

    Parameters
    ----------
    gram : ndarray of shape (P, P)
        :math:`\\sum_n w_n \\tilde x_n \\tilde x_n^\\top` of the whole (shifted) design.
    names : sequence of str
        Names of the P columns (the intercept last when there is one).
    argument : str
        The argument the columns came from, for the message.
    remedy : str
        What the user can do besides dropping a column (say, ``"set ridge > 0"``).
    intercept : bool
        Whether the last column is the intercept (columns are then centred, and a
        zero column is a constant one).

    Raises
    ------
    ValueError
        Naming the columns involved and the remedies.
    """
    diagonal = np.diag(gram)
    scale_max = diagonal.max() if diagonal.size else 0.0
    dead = np.flatnonzero(diagonal <= _EPS * scale_max)
    if dead.size:
        column = int(dead[0])
        if intercept:
            what = "constant (collinear with the intercept)"
            drop = "Drop it (the intercept stands for it)"
        else:
            what, drop = "zero in every row", "Drop it"
        raise ValueError(
            f"{argument} column {names[column]} is {what}, so its coefficient is not "
            f"determined. {drop}, or {remedy}."
        )
    scale = np.sqrt(diagonal)
    scaled = gram / np.outer(scale, scale)
    eigenvalues, vectors = np.linalg.eigh(0.5 * (scaled + scaled.T))
    if eigenvalues[0] >= COLLINEARITY_TOLERANCE * eigenvalues[-1]:
        return
    direction = vectors[:, 0]
    involved = np.flatnonzero(np.abs(direction) > 0.1 * np.abs(direction).max())
    listed = ", ".join(names[j] for j in involved)
    if eigenvalues[0] > _EPS * eigenvalues[-1]:
        how = (
            "nearly linearly dependent (condition number of the scaled Gram matrix "
            f"{eigenvalues[-1] / eigenvalues[0]:.3g})"
        )
    else:
        how = "linearly dependent"
    rank = int((eigenvalues > len(names) * _EPS * eigenvalues[-1]).sum())
    if rank < len(names):
        how += f"; the design has rank {rank} for {len(names)} columns"
    raise ValueError(
        f"{argument} is collinear: the columns {listed} are {how}, so their coefficients are "
        f"not determined. Drop one of these columns, or {remedy}."
    )


def select_units(current: Statistics, candidate: Statistics, mask: np.ndarray) -> Statistics:
    """Statistics taking, along the leading axis of every field, ``candidate`` where ``mask``.

    The units (components, or the one gating block) of a Newton step are accepted
    separately; their statistics are kept in step with their parameters.
    """
    fields = {}
    for field in dataclasses.fields(current):
        mine, theirs = getattr(current, field.name), getattr(candidate, field.name)
        shape = (-1,) + (1,) * (np.ndim(mine) - 1)
        fields[field.name] = np.where(mask.reshape(shape), theirs, mine)
    return type(current)(**fields)


def _penalty_mask(n_columns: int, intercept: bool) -> np.ndarray:
    """1 for the slopes, 0 for the intercept (the last column when there is one)."""
    mask = np.ones(n_columns)
    if intercept:
        mask[-1] = 0.0
    return mask


def _linear_statistics(
    design: np.ndarray, y: np.ndarray, resp: np.ndarray
) -> LinearStatistics:
    """:class:`LinearStatistics` of a chunk, one matrix product per component."""
    n_components = resp.shape[1]
    n_columns = design.shape[1]
    xx = np.empty((n_components, n_columns, n_columns))
    xy = np.empty((n_components, n_columns, y.shape[1]))
    for k in range(n_components):
        weighted = design * resp[:, k : k + 1]
        xx[k] = weighted.T @ design
        xy[k] = weighted.T @ y
    return LinearStatistics(resp.sum(axis=0), xx, xy, resp.T @ (y * y))


def _through_point(coef: np.ndarray, row: np.ndarray, target: np.ndarray, intercept: bool):
    """Coefficients (T, P) moved so that the predictor at ``row`` equals ``target`` (T,).

    With an intercept only the intercept moves; without, the smallest change in norm.
    """
    miss = target - coef @ row
    moved = coef.copy()
    if intercept:
        moved[:, -1] += miss
    else:
        moved += miss[:, None] * row[None, :] / max(float(row @ row), _EPS)
    return moved


@dataclasses.dataclass(frozen=True)
class _Regression:
    """What the three families share: the ridge and the intercept column."""

    ridge: float = 0.0
    intercept: bool = True

    def penalty_diagonal(self, n_columns: int) -> np.ndarray:
        r""":math:`\lambda D`: the ridge on the slopes, 0 on the intercept."""
        return self.ridge * _penalty_mask(n_columns, self.intercept)

    def slopes(self, params: RegressionParams) -> np.ndarray:
        """The penalised coefficients (K, T, P) (the intercept column set to 0)."""
        return params.coef * _penalty_mask(params.coef.shape[2], self.intercept)

    def working_response(self, y: np.ndarray) -> np.ndarray:
        """The response the first least-squares fit regresses on (the link of y)."""
        return y

    def initial_statistics(
        self, design: np.ndarray, y: np.ndarray, resp: np.ndarray
    ) -> LinearStatistics:
        """Least-squares statistics of the working response :meth:`working_response`."""
        return _linear_statistics(design, self.working_response(y), resp)

    def _least_squares(self, stats: LinearStatistics) -> tuple[np.ndarray, np.ndarray]:
        """Ridge solutions (K, T, P) of the statistics, and their numerical ranks (K,)."""
        n_components, n_columns, _ = stats.xy.shape
        penalty = self.penalty_diagonal(n_columns)
        coef = np.empty((n_components, stats.xy.shape[2], n_columns))
        ranks = np.empty(n_components, dtype=int)
        for k in range(n_components):
            solution, ranks[k] = solve_gram(stats.xx[k], stats.xy[k], penalty)
            coef[k] = solution.T
        return coef, ranks

    def mean(self, design: np.ndarray, params: RegressionParams) -> np.ndarray:
        """The mean of y under every component, (n, K, T)."""
        return self.inverse_link(np.einsum("np,ktp->nkt", design, params.coef))

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """The mean as a function of the linear predictor."""
        return eta

    def interpolate(
        self, params: RegressionParams, proposal: RegressionParams, step: np.ndarray
    ) -> RegressionParams:
        """``params`` moved the fraction ``step[k]`` of the way to ``proposal``, per k."""
        coef = params.coef + step[:, None, None] * (proposal.coef - params.coef)
        return dataclasses.replace(params, coef=coef)


@dataclasses.dataclass(frozen=True)
class LinearGaussian(_Regression):
    r"""Linear-Gaussian regressions, :math:`y_{nt} \mid c = k \sim
    \mathcal N(B_{kt} \tilde x_n, \sigma^2_{kt})`.

    Parameters
    ----------
    ridge : float
        :math:`\lambda \ge 0`, the ridge on the slopes.
    intercept : bool
        Whether the last design column is the intercept (not penalised).
    noise : {'component', 'shared'}
        A noise variance per component and output, or one per output shared by all
        components.
    reg_noise : float
        :math:`\epsilon \ge 0`, added to every noise variance.
    """

    noise: str = "component"
    reg_noise: float = 1e-6
    newton: ClassVar[bool] = False

    def features(self, design: np.ndarray, y: np.ndarray, params: RegressionParams):
        """Residuals :math:`y_n - B_k \\tilde x_n`, (n, K, T)."""
        return y[:, None, :] - np.einsum("np,ktp->nkt", design, params.coef)

    def log_prob(self, features: np.ndarray, params: RegressionParams) -> np.ndarray:
        r""":math:`-\tfrac12 \sum_t [\log 2\pi\sigma^2_{kt} + r_{nkt}^2 / \sigma^2_{kt}]`."""
        variance = params.variance
        constant = -0.5 * (variance.shape[1] * _LOG_2PI + np.log(variance).sum(axis=1))
        return constant - 0.5 * np.einsum("nkt,kt->nk", features * features, 1.0 / variance)

    def statistics(self, design, y, features, resp) -> LinearStatistics:
        """:class:`LinearStatistics` of the chunk (the residuals are not needed)."""
        return _linear_statistics(design, y, resp)

    def initialize(self, stats: LinearStatistics) -> RegressionParams:
        """The closed-form M-step."""
        return self._closed_form(stats)[0]

    def maximize(self, stats: LinearStatistics, params: RegressionParams) -> RegressionParams:
        r"""Closed form: :math:`B_k^\top = (A_k + \lambda D)^{-1} b_k`,
        :math:`\sigma^2_{kt} = (c_{kt} - B_{kt}^\top b_{kt}) / N_k + \epsilon`
        (shared: :math:`\sum_k (c_{kt} - B_{kt}^\top b_{kt}) / \sum_k N_k + \epsilon`).

        :math:`N_k` is increased by :math:`10\varepsilon` before dividing, so that an empty
        component gets finite numbers; the caller re-seeds it.
        """
        return self._closed_form(stats)[0]

    def _closed_form(self, stats: LinearStatistics) -> tuple[RegressionParams, np.ndarray]:
        """The M-step's parameters, and the numerical rank of each component's system."""
        coef, ranks = self._least_squares(stats)
        explained = np.einsum("ktp,kpt->kt", coef, stats.xy)
        residual = np.maximum(stats.yy - explained, 0.0)
        nk = stats.resp_sum + 10 * _EPS
        if self.noise == "shared":
            variance = np.broadcast_to(residual.sum(axis=0) / nk.sum(), residual.shape).copy()
        else:
            variance = residual / nk[:, None]
        return RegressionParams(coef, variance + self.reg_noise), ranks

    def expected_log_likelihood(
        self, params: RegressionParams, stats: LinearStatistics
    ) -> float:
        r"""The penalised Q of the regressions at ``params`` for the statistics.

        With :math:`B^*` the (ridge) least-squares solution of the statistics and
        :math:`R^*_{kt} = c_{kt} - B^{*\top}_{kt} b_{kt}` its penalised residual sum of
        squares,

        .. math::

            Q = \sum_{k,t} -\tfrac12 N_k \log 2\pi\sigma^2_{kt}
                - \frac{R^*_{kt} + (B_{kt} - B^*_{kt})^\top (A_k + \lambda D)
                  (B_{kt} - B^*_{kt})}{2\sigma^2_{kt}},

        which equals :math:`\sum_n \gamma_{nk} \log p(y_n \mid x_n, k)` minus the ridge
        term, and compares parameters without the cancellation of
        :math:`c - 2B^\top b + B^\top A B`.
        """
        best, _ = self._least_squares(stats)
        floor = np.maximum(stats.yy - np.einsum("ktp,kpt->kt", best, stats.xy), 0.0)
        delta = params.coef - best
        penalty = self.penalty_diagonal(delta.shape[2])
        quadratic = np.einsum("ktp,kpq,ktq->kt", delta, stats.xx, delta)
        quadratic += np.einsum("ktp,p,ktp->kt", delta, penalty, delta)
        variance = params.variance
        log_norm = -0.5 * stats.resp_sum[:, None] * (_LOG_2PI + np.log(variance))
        return float((log_norm - (floor + quadratic) / (2.0 * variance)).sum())

    def degenerate(self, stats: LinearStatistics) -> np.ndarray:
        """Components whose weighted design is singular (without ridge): their
        coefficients are not determined by the rows they hold."""
        if self.ridge > 0:
            return np.zeros(stats.resp_sum.shape, dtype=bool)
        return self._least_squares(stats)[1] < stats.xx.shape[1]

    def penalty(self, params: RegressionParams) -> float:
        r""":math:`-\sum_{k,t} \lambda \lVert \beta_{kt} \rVert^2 / (2\sigma^2_{kt})`, the
        penalised objective's extra term."""
        if self.ridge == 0:
            return 0.0
        squares = (self.slopes(params) ** 2).sum(axis=2)
        return float(-0.5 * self.ridge * (squares / params.variance).sum())

    def regularization_gap(self, params: RegressionParams, stats: LinearStatistics) -> float:
        r"""Loss of Q per sample caused by the floor :math:`\epsilon` on the variances.

        Replacing the maximiser :math:`s` by :math:`s + \epsilon` costs
        :math:`\tfrac12 [\log(1 + \epsilon / s) - \epsilon / (s + \epsilon)]` per unit of
        responsibility and per output.
        """
        eps = self.reg_noise
        if eps == 0.0:
            return 0.0
        exact = params.variance - eps
        if (exact <= 0).any():
            return np.inf
        loss = 0.5 * (np.log1p(eps / exact) - eps / (exact + eps))
        if self.noise == "shared":
            return float(loss[0].sum())
        share = stats.resp_sum / stats.resp_sum.sum()
        return float(share @ loss.sum(axis=1))

    def reseed(
        self, params: RegressionParams, stats: LinearStatistics, component: int, rows: Rows
    ) -> RegressionParams:
        """Component ``component`` on the pooled regression of all the data, moved to pass
        through the row ``rows`` (one row), with the pooled noise variance."""
        pooled = LinearStatistics(
            stats.resp_sum.sum(keepdims=True), stats.xx.sum(axis=0, keepdims=True),
            stats.xy.sum(axis=0, keepdims=True), stats.yy.sum(axis=0, keepdims=True),
        )
        fit = self._closed_form(pooled)[0]
        coef = params.coef.copy()
        coef[component] = _through_point(fit.coef[0], rows.design[0], rows.y[0], self.intercept)
        variance = params.variance.copy()
        if self.noise != "shared":
            variance[component] = fit.variance[0]
        return RegressionParams(coef, variance)

    def n_parameters(self, params: RegressionParams) -> int:
        """K·T·P coefficients and K·T (shared: T) variances."""
        n_components, n_outputs, n_columns = params.coef.shape
        variances = n_outputs if self.noise == "shared" else n_components * n_outputs
        return n_components * n_outputs * n_columns + variances

    def sample(
        self, design: np.ndarray, classes: np.ndarray, params: RegressionParams,
        rng: np.random.RandomState,
    ) -> np.ndarray:
        """Draws of y (n, T) for rows ``design`` of classes ``classes``."""
        mean = np.einsum("np,ntp->nt", design, params.coef[classes])
        return mean + rng.standard_normal(mean.shape) * np.sqrt(params.variance[classes])


@dataclasses.dataclass(frozen=True)
class _GLM(_Regression, abc.ABC):
    r"""One-output generalised linear models fitted by checked Newton steps.

    Subclasses give the log-likelihood :math:`\ell(y, \eta)`, the mean :math:`\mu(\eta)`
    and the IRLS weight :math:`w(\eta) = -\partial^2 \ell / \partial \eta^2`; for these
    canonical links :math:`\partial \ell / \partial \eta = y - \mu`.
    """

    newton: ClassVar[bool] = True

    @abc.abstractmethod
    def _terms(self, eta: np.ndarray, y: np.ndarray):
        """Log-likelihood, mean and IRLS weight, each (n, K)."""

    def features(self, design: np.ndarray, y: np.ndarray, params: RegressionParams):
        """The linear predictors (n, K) and y (n,)."""
        return design @ params.coef[:, 0, :].T, y[:, 0]

    def log_prob(self, features, params: RegressionParams) -> np.ndarray:
        """:math:`\\ell(y_n, \\eta_{nk})`, (n, K)."""
        eta, y = features
        return self._terms(eta, y)[0]

    def statistics(self, design, y, features, resp) -> NewtonStatistics:
        r"""Gradient :math:`\sum_n \gamma_{nk} (y_n - \mu_{nk}) \tilde x_n`, information
        :math:`\sum_n \gamma_{nk} w_{nk} \tilde x_n \tilde x_n^\top` and
        :math:`Q_k = \sum_n \gamma_{nk} \ell(y_n, \eta_{nk})`.

        Rows with zero responsibility contribute nothing, even where a trial step made
        their mean overflow.
        """
        eta, target = features
        log_lik, mu, weight = self._terms(eta, target)
        n_components = resp.shape[1]
        n_columns = design.shape[1]
        held = resp > 0
        information = np.empty((n_components, n_columns, n_columns))
        with np.errstate(invalid="ignore", over="ignore"):
            objective = np.where(held, resp * log_lik, 0.0).sum(axis=0)
            residual = np.where(held, resp * (target[:, None] - mu), 0.0)
            curvature = np.where(held, resp * weight, 0.0)
            for k in range(n_components):
                information[k] = (design * curvature[:, k : k + 1]).T @ design
            gradient = residual.T @ design
        return NewtonStatistics(resp.sum(axis=0), gradient, information, objective)

    def initialize(self, stats: LinearStatistics) -> RegressionParams:
        """Weighted least squares of the working response on the design."""
        return RegressionParams(self._least_squares(stats)[0])

    def maximize(self, stats: NewtonStatistics, params: RegressionParams) -> RegressionParams:
        r"""The Newton step :math:`B_k + (I_k + \lambda D)^{-1}(g_k - \lambda D B_k)` of each
        component (a minimum-norm step where the information is singular)."""
        n_columns = params.coef.shape[2]
        penalty = self.penalty_diagonal(n_columns)
        coef = params.coef.copy()
        for k in range(coef.shape[0]):
            gradient = stats.gradient[k] - penalty * params.coef[k, 0]
            step, _ = solve_gram(stats.information[k], gradient[:, None], penalty)
            coef[k, 0] += step[:, 0]
        return RegressionParams(coef)

    def predicted_increase(
        self, stats: NewtonStatistics, params: RegressionParams, proposal: RegressionParams
    ) -> np.ndarray:
        r"""The increase of each :math:`Q_k` that the quadratic model of the Newton step
        predicts, :math:`\tfrac12 (g_k - \lambda D B_k)^\top \Delta_k`, (K,)."""
        gradient = stats.gradient - self.ridge * self.slopes(params)[:, 0, :]
        return 0.5 * (gradient * (proposal.coef - params.coef)[:, 0, :]).sum(axis=1)

    def penalized_objective(
        self, stats: NewtonStatistics, params: RegressionParams
    ) -> np.ndarray:
        r""":math:`Q_k - \tfrac{\lambda}{2} \lVert \beta_k \rVert^2` per component (K,);
        ``-inf`` where a trial step overflowed."""
        value = stats.objective - 0.5 * self.ridge * (self.slopes(params) ** 2).sum(axis=(1, 2))
        return np.where(np.isnan(value), -np.inf, value)

    def expected_log_likelihood(
        self, params: RegressionParams, stats: NewtonStatistics
    ) -> float:
        """The penalised Q of the regressions, from statistics taken at ``params``."""
        return float(self.penalized_objective(stats, params).sum())

    def penalty(self, params: RegressionParams) -> float:
        r""":math:`-\tfrac{\lambda}{2} \sum_k \lVert \beta_k \rVert^2`."""
        return float(-0.5 * self.ridge * (self.slopes(params) ** 2).sum())

    def degenerate(self, stats: NewtonStatistics) -> np.ndarray:
        """None: a singular information only makes the Newton step a minimum-norm one."""
        return np.zeros(stats.resp_sum.shape, dtype=bool)

    def regularization_gap(self, params: RegressionParams, stats: NewtonStatistics) -> float:
        """0: the penalised objective includes the ridge, and the checked steps increase
        it."""
        return 0.0

    def reseed(
        self, params: RegressionParams, stats: NewtonStatistics, component: int, rows: Rows
    ) -> RegressionParams:
        """Component ``component`` with the coefficients of the heaviest component, moved so
        that its linear predictor at the row ``rows`` is the link of that row's y."""
        heaviest = int(np.argmax(stats.resp_sum))
        coef = params.coef.copy()
        target = self.working_response(rows.y[:1])[0]
        coef[component] = _through_point(
            params.coef[heaviest], rows.design[0], target, self.intercept
        )
        return RegressionParams(coef)

    def n_parameters(self, params: RegressionParams) -> int:
        """K·P coefficients."""
        return int(params.coef.size)


@dataclasses.dataclass(frozen=True)
class Logistic(_GLM):
    r"""Logistic regressions, :math:`p(y_n = 1 \mid c = k) = \operatorname{sigm}(\eta_{nk})`.

    :math:`\ell = y\eta - \log(1 + e^{\eta})`, :math:`\mu = \operatorname{sigm}(\eta)`,
    :math:`w = \mu (1 - \mu)`. The working response of the first fit is
    :math:`\operatorname{logit}((y + \tfrac12) / 2) = \pm \log 3`.
    """

    def _terms(self, eta, y):
        log_lik = y[:, None] * eta - np.logaddexp(0.0, eta)
        mu = special.expit(eta)
        return log_lik, mu, mu * (1.0 - mu)

    def working_response(self, y: np.ndarray) -> np.ndarray:
        r""":math:`\operatorname{logit}((y + \tfrac12) / 2)`."""
        return special.logit((y + 0.5) / 2.0)

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        r""":math:`\operatorname{sigm}(\eta)`, the probability of 1."""
        return special.expit(eta)

    def sample(self, design, classes, params, rng) -> np.ndarray:
        """Bernoulli draws (n, 1)."""
        eta = np.einsum("np,ntp->nt", design, params.coef[classes])
        return (rng.uniform(size=eta.shape) < special.expit(eta)).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class PoissonRegression(_GLM):
    r"""Poisson regressions, :math:`y_n \mid c = k \sim \operatorname{Poisson}(e^{\eta_{nk}})`.

    :math:`\ell = y\eta - e^{\eta} - \log \Gamma(y + 1)`, :math:`\mu = w = e^{\eta}`. The
    working response of the first fit is :math:`\log(y + 0.1)`. Non-integer
    :math:`y \ge 0` are accepted (the quasi-Poisson likelihood, as scikit-learn's
    ``PoissonRegressor``).
    """

    def _terms(self, eta, y):
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(eta)
            log_lik = y[:, None] * eta - mu - special.gammaln(y + 1.0)[:, None]
        return log_lik, mu, mu

    def working_response(self, y: np.ndarray) -> np.ndarray:
        r""":math:`\log(y + 0.1)`."""
        return np.log(y + 0.1)

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        r""":math:`e^{\eta}`, the expected count."""
        return np.exp(eta)

    def sample(self, design, classes, params, rng) -> np.ndarray:
        """Poisson draws (n, 1)."""
        eta = np.einsum("np,ntp->nt", design, params.coef[classes])
        return rng.poisson(np.exp(eta)).astype(np.float64)


#: The families by the name the estimator takes.
FAMILIES = {"gaussian": LinearGaussian, "logistic": Logistic, "poisson": PoissonRegression}
