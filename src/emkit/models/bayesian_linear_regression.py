r"""Bayesian linear regression fitted by Expectation-Maximization.

The model (Bishop, *Pattern Recognition and Machine Learning*, §3.3, §3.5 and §9.3.4) is

.. math::

    t_n = \mathbf w^\top \boldsymbol\phi(\mathbf x_n) + \varepsilon_n, \qquad
    \varepsilon_n \sim \mathcal N(0, \beta^{-1}), \qquad
    \mathbf w \sim \mathcal N(\mathbf 0, \mathbf A^{-1}),

with :math:`\mathbf A = \alpha \mathbf I` (one weight precision) or
:math:`\mathbf A = \operatorname{diag}(\alpha_1, \dots, \alpha_M)` (automatic relevance
determination). The weights are the latent variables: the E-step computes their Gaussian
posterior, the M-step re-estimates the precisions :math:`\alpha` and :math:`\beta`, and every
iteration increases the log evidence :math:`\ln p(\mathbf t \mid \alpha, \beta)`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from emkit._validation import check_data, check_sample_weight

__all__ = ["BayesianLinearRegression"]

_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = math.log(2.0 * math.pi)
# A decrease of the log evidence larger than this fraction of the magnitude of its terms is
# more than rounding can explain.
_DECREASE_RTOL = 1e-10


@dataclasses.dataclass(frozen=True)
class _Design:
    """The centred, weighted data reduced once by a thin SVD ``Phi = U diag(s) Vt``.

    Every quantity the EM iterations need is a function of ``s``, ``Vt``, ``z = U^T t`` and
    the squared norm of the part of ``t`` outside the column space of ``Phi``.
    """

    singular_values: np.ndarray  # (K,), K = min(n_samples, n_features)
    Vt: np.ndarray  # (K, n_features)
    z: np.ndarray  # (K,)
    residual_outside: float  # ||t - U U^T t||^2
    n_samples: float  # sum of the sample weights
    n_features: int

    @property
    def eigenvalues(self) -> np.ndarray:
        """The nonzero-part spectrum of ``Phi^T Phi``: ``s**2``."""
        return self.singular_values**2

    @property
    def reduced(self) -> np.ndarray:
        """``R = diag(s) Vt``, with ``R^T R = Phi^T Phi`` and ``R^T z = Phi^T t``."""
        return self.singular_values[:, None] * self.Vt


@dataclasses.dataclass(frozen=True)
class _Posterior:
    """What one E-step yields: the posterior of the weights and the evidence terms."""

    mean: np.ndarray  # m_N, (n_features,)
    cov_diag: np.ndarray | None  # diag(S_N), computed with ARD only
    trace_cov: float  # Tr(S_N)
    sse: float  # ||t - Phi m_N||^2
    trace_gram_cov: float  # Tr(Phi^T Phi S_N)
    logdet_precision: float  # ln |A + beta Phi^T Phi|
    log_evidence: float  # ln p(t | alpha, beta)
    magnitude: float  # sum of the absolute values of the terms of log_evidence


@dataclasses.dataclass(frozen=True)
class _Problem:
    """The reduced design with what the fit needs besides it."""

    design: _Design
    X_offset: np.ndarray
    y_offset: float
    beta_init: float
    beta_max: float  # the noise variance is kept above eps * mean(y**2)


def _reduce(Phi: np.ndarray, t: np.ndarray, n_samples: float) -> _Design:
    """The thin SVD of ``Phi`` and the projections of ``t`` the iterations need."""
    try:
        U, s, Vt = linalg.svd(Phi, full_matrices=False, check_finite=False)
    except linalg.LinAlgError:
        U, s, Vt = linalg.svd(
            Phi, full_matrices=False, check_finite=False, lapack_driver="gesvd"
        )
    z = U.T @ t
    outside = t - U @ z
    return _Design(
        singular_values=s,
        Vt=Vt,
        z=z,
        residual_outside=float(outside @ outside),
        n_samples=n_samples,
        n_features=Phi.shape[1],
    )


def _log_evidence(
    design: _Design,
    alpha: np.ndarray | float,
    beta: float,
    sse: float,
    weighted_norm: float,
    logdet_precision: float,
) -> tuple[float, float]:
    r"""Bishop (3.86): :math:`\ln p(\mathbf t \mid \alpha, \beta)` and its terms' magnitude.

    ``weighted_norm`` is :math:`\mathbf m_N^\top \mathbf A \mathbf m_N`; with a single
    precision, ``alpha`` enters the prior term as :math:`\tfrac M2 \ln \alpha`.
    """
    n = design.n_samples
    if np.ndim(alpha) == 0:
        log_det_prior = design.n_features * math.log(alpha)
    else:
        log_det_prior = float(np.sum(np.log(alpha)))
    terms = (
        0.5 * log_det_prior,
        0.5 * n * math.log(beta),
        -0.5 * beta * sse,
        -0.5 * weighted_norm,
        -0.5 * logdet_precision,
        -0.5 * n * _LOG_2PI,
    )
    return math.fsum(terms), math.fsum(abs(term) for term in terms)


def _e_step_isotropic(design: _Design, alpha: float, beta: float) -> _Posterior:
    r"""Posterior of the weights under :math:`\mathbf A = \alpha\mathbf I`, in O(K).

    In the basis of the right singular vectors, :math:`\mathbf S_N` is diagonal with entries
    :math:`1/(\alpha + \beta\lambda_i)` (and :math:`1/\alpha` outside the row space of
    :math:`\boldsymbol\Phi`).
    """
    lam = design.eigenvalues
    s = design.singular_values
    K = lam.shape[0]
    M = design.n_features
    d = alpha + beta * lam
    mean_rotated = beta * s * design.z / d
    mean = design.Vt.T @ mean_rotated
    sse = design.residual_outside + float(np.sum((alpha * design.z / d) ** 2))
    trace_cov = float(np.sum(1.0 / d)) + (M - K) / alpha
    trace_gram_cov = float(np.sum(lam / d))
    logdet = float(np.sum(np.log(d))) + (M - K) * math.log(alpha)
    norm2 = float(mean_rotated @ mean_rotated)
    log_evidence, magnitude = _log_evidence(design, alpha, beta, sse, alpha * norm2, logdet)
    return _Posterior(
        mean=mean,
        cov_diag=None,
        trace_cov=trace_cov,
        sse=sse,
        trace_gram_cov=trace_gram_cov,
        logdet_precision=logdet,
        log_evidence=log_evidence,
        magnitude=magnitude,
    )


def _e_step_ard(
    design: _Design, alpha: np.ndarray, beta: float, *, full_cov: bool = False
) -> tuple[_Posterior, np.ndarray | None]:
    r"""Posterior of the weights under :math:`\mathbf A = \operatorname{diag}(\alpha_j)`.

    With :math:`\mathbf R = \operatorname{diag}(s)\mathbf V^\top` (K x M), either the
    M x M precision :math:`\mathbf A + \beta\mathbf R^\top\mathbf R` is factorised
    (K = M), or, when there are fewer samples than features, the K x K matrix
    :math:`\mathbf C = \mathbf I + \beta\mathbf R\mathbf A^{-1}\mathbf R^\top` and the
    Woodbury identity :math:`\mathbf S_N = \mathbf A^{-1} - \beta\mathbf A^{-1}\mathbf
    R^\top\mathbf C^{-1}\mathbf R\mathbf A^{-1}`, with
    :math:`|\mathbf A + \beta\mathbf R^\top\mathbf R| = |\mathbf A|\,|\mathbf C|`.
    Both are Cholesky factorisations of symmetric positive definite matrices; nothing is
    inverted explicitly.
    """
    R = design.reduced
    z = design.z
    K, M = R.shape
    cov = None
    if K == M:
        precision = beta * (R.T @ R)
        precision[np.diag_indices(M)] += alpha
        L = linalg.cholesky(precision, lower=True, check_finite=False)
        L_inv = linalg.solve_triangular(L, np.eye(M), lower=True, check_finite=False)
        cov_diag = np.sum(L_inv**2, axis=0)
        mean = beta * (L_inv.T @ (L_inv @ (R.T @ z)))
        W = L_inv @ R.T
        trace_gram_cov = float(np.sum(W**2))
        logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
        if full_cov:
            cov = L_inv.T @ L_inv
    else:
        R_scaled = R / alpha
        C = beta * (R_scaled @ R.T)
        C[np.diag_indices(K)] += 1.0
        L = linalg.cholesky(C, lower=True, check_finite=False)
        W = linalg.solve_triangular(L, R_scaled, lower=True, check_finite=False)
        cov_diag = 1.0 / alpha - beta * np.sum(W**2, axis=0)
        mean = beta * (W.T @ linalg.solve_triangular(L, z, lower=True, check_finite=False))
        L_inv = linalg.solve_triangular(L, np.eye(K), lower=True, check_finite=False)
        trace_gram_cov = max((K - float(np.sum(L_inv**2))) / beta, 0.0)
        logdet = float(np.sum(np.log(alpha))) + 2.0 * float(np.sum(np.log(np.diag(L))))
        if full_cov:
            cov = -beta * (W.T @ W)
            cov[np.diag_indices(M)] += 1.0 / alpha
    residual = z - R @ mean
    sse = design.residual_outside + float(residual @ residual)
    weighted_norm = float(np.sum(alpha * mean**2))
    log_evidence, magnitude = _log_evidence(design, alpha, beta, sse, weighted_norm, logdet)
    posterior = _Posterior(
        mean=mean,
        cov_diag=cov_diag,
        trace_cov=float(np.sum(cov_diag)),
        sse=sse,
        trace_gram_cov=trace_gram_cov,
        logdet_precision=logdet,
        log_evidence=log_evidence,
        magnitude=magnitude,
    )
    return posterior, cov


def _isotropic_cov(design: _Design, alpha: float, beta: float) -> np.ndarray:
    r""":math:`\mathbf S_N = \alpha^{-1}\mathbf I + \mathbf V\operatorname{diag}\big(
    \tfrac{1}{\alpha+\beta\lambda_i} - \tfrac1\alpha\big)\mathbf V^\top`."""
    lam = design.eigenvalues
    shrink = -beta * lam / (alpha * (alpha + beta * lam))
    cov = (design.Vt.T * shrink) @ design.Vt
    cov[np.diag_indices(design.n_features)] += 1.0 / alpha
    return cov


class BayesianLinearRegression(RegressorMixin, BaseEstimator):
    r"""Bayesian linear regression whose precisions are fitted by EM.

    The targets are modelled as
    :math:`t = \mathbf w^\top\boldsymbol\phi(\mathbf x) + \varepsilon` with Gaussian noise
    :math:`\varepsilon\sim\mathcal N(0,\beta^{-1})` and a Gaussian prior
    :math:`\mathbf w\sim\mathcal N(\mathbf 0,\mathbf A^{-1})` on the weights, where
    :math:`\mathbf A=\alpha\mathbf I`, or :math:`\mathbf A=\operatorname{diag}(\alpha_j)`
    with ``ard=True`` (automatic relevance determination). The features
    :math:`\boldsymbol\phi(\mathbf x)` are the columns of ``X``; put a basis expansion such
    as :class:`~sklearn.preprocessing.PolynomialFeatures` in front of it in a pipeline.

    The weights are treated as latent variables (Bishop, PRML §9.3.4):

    **E-step** — the posterior of the weights is :math:`\mathcal N(\mathbf m_N,\mathbf S_N)`
    with

    .. math::

        \mathbf S_N^{-1} = \mathbf A + \beta\boldsymbol\Phi^\top\boldsymbol\Phi, \qquad
        \mathbf m_N = \beta\mathbf S_N\boldsymbol\Phi^\top\mathbf t.

    **M-step** — maximising the expected complete-data log likelihood gives (PRML 9.63 and
    the matching noise update)

    .. math::

        \alpha = \frac{M}{\mathbf m_N^\top\mathbf m_N + \operatorname{Tr}\mathbf S_N}
        \quad\Big(\text{ARD: } \alpha_j = \frac{1}{m_j^2 + (\mathbf S_N)_{jj}}\Big),
        \qquad
        \frac1\beta = \frac{\lVert\mathbf t-\boldsymbol\Phi\mathbf m_N\rVert^2
        + \operatorname{Tr}(\boldsymbol\Phi^\top\boldsymbol\Phi\mathbf S_N)}{N}.

    These are not the evidence-framework (MacKay) updates of
    :class:`sklearn.linear_model.BayesianRidge`, but both climb the same log evidence and
    stop at the same stationary point. Each EM iteration cannot decrease the log evidence
    (PRML 3.86)

    .. math::

        \ln p(\mathbf t\mid\alpha,\beta) = \tfrac12\ln|\mathbf A| + \tfrac N2\ln\beta
        - \tfrac\beta2\lVert\mathbf t-\boldsymbol\Phi\mathbf m_N\rVert^2
        - \tfrac12\mathbf m_N^\top\mathbf A\mathbf m_N - \tfrac12\ln|\mathbf S_N^{-1}|
        - \tfrac N2\ln(2\pi),

    which is checked at every iteration: a decrease beyond rounding raises a
    :class:`RuntimeWarning`.

    Parameters
    ----------
    max_iter : int, default=300
        Maximum number of EM iterations (M-step followed by E-step).
    tol : float, default=1e-6
        Convergence threshold on the change of the log evidence divided by the number of
        samples (the sum of the sample weights): iterations stop once
        :math:`|\Delta\ln p(\mathbf t\mid\alpha,\beta)|/N \le` ``tol``. EM converges
        linearly, so the change of the evidence is roughly the square of the remaining
        error of the precisions; lower ``tol`` for precisions accurate to many digits.
    alpha_init : float, default=None
        Initial weight precision :math:`\alpha` (the same value for every feature with
        ``ard=True``). ``None`` means 1.0.
    beta_init : float, default=None
        Initial noise precision :math:`\beta`. ``None`` means one over the (weighted)
        variance of ``y``.
    fit_intercept : bool, default=True
        Whether to fit an intercept. As in :class:`~sklearn.linear_model.BayesianRidge`,
        ``X`` and ``y`` are centred on their (sample-weighted) means before the fit, the
        intercept gets a flat prior and is not a weight of the model: it is
        ``intercept_ = y_mean - X_mean @ coef_``, and the evidence is that of the centred
        data. Set it to ``False`` when ``X`` already has a constant column (which then
        gets the Gaussian prior like any other weight).
    ard : bool, default=False
        If True, each weight has its own precision :math:`\alpha_j` (automatic relevance
        determination): precisions of irrelevant features grow without bound, which
        shrinks their weights to zero. An iteration then costs
        :math:`O(\min(N, M)^2 M)` instead of :math:`O(\min(N, M))`, and EM approaches the
        pruned weights slowly (sublinearly).
    verbose : int, default=0
        0 prints nothing, 1 prints a summary at the end of the fit, 2 and more print the
        log evidence at every iteration.
    copy_X : bool, default=True
        If False, a writeable float64 ``X`` may be overwritten by its centred and weighted
        version, which saves one copy of the data.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior mean :math:`\mathbf m_N` of the weights, in float64.
    intercept_ : float
        Independent term; 0.0 if ``fit_intercept=False``.
    alpha_ : float or ndarray of shape (n_features,)
        Estimated precision of the weights :math:`\alpha` (an array of the
        :math:`\alpha_j` with ``ard=True``). This is ``lambda_`` in scikit-learn's
        ``BayesianRidge`` and ``ARDRegression``.
    beta_ : float
        Estimated precision of the noise :math:`\beta`. This is ``alpha_`` in
        scikit-learn's ``BayesianRidge`` and ``ARDRegression``.
    sigma_ : ndarray of shape (n_features, n_features)
        Posterior covariance :math:`\mathbf S_N` of the weights, in float64.
    scores_ : ndarray of shape (n_iter_ + 1,)
        Log evidence :math:`\ln p(\mathbf t\mid\alpha,\beta)` (PRML 3.86, with all
        constants, for the whole data set) at the initial precisions and after each
        iteration; non-decreasing. ``scores_[-1]`` belongs to ``alpha_`` and ``beta_``.
    n_iter_ : int
        Number of EM iterations run.
    converged_ : bool
        Whether the stopping criterion on ``tol`` was met within ``max_iter`` iterations.
    X_offset_ : ndarray of shape (n_features,)
        The (weighted) mean of the training ``X`` subtracted before fitting; zeros if
        ``fit_intercept=False``.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.BayesianRidge : The same model, fitted by MacKay's updates.
    sklearn.linear_model.ARDRegression : The ARD model, fitted by MacKay's updates, with
        pruning.

    Notes
    -----
    ``X`` and ``y`` are reduced once by a thin singular value decomposition of the centred,
    weighted design matrix :math:`\boldsymbol\Phi` (n x M), which costs
    :math:`O(nM\min(n, M))`. With a single precision an iteration then costs
    :math:`O(\min(n, M))`: in the basis of the right singular vectors the posterior
    covariance is diagonal, :math:`1/(\alpha+\beta\lambda_i)`. Both n > M and n < M work,
    and no ill-conditioned matrix is inverted.

    Fitting is done in float64 whatever the dtype of ``X``; fitted attributes are float64.
    :meth:`predict` returns the dtype of its input (float32 stays float32).

    Sample weights act as repeated rows: integer weights give the same fit as repeating
    each row that many times, and :math:`N` is the sum of the weights.

    Names differ from scikit-learn's: here ``alpha_`` is the weight precision and
    ``beta_`` the noise precision, as in Bishop's book; in ``BayesianRidge``, ``alpha_`` is
    the noise precision and ``lambda_`` the weight precision. With its hyperpriors set to
    zero (``alpha_1 = alpha_2 = lambda_1 = lambda_2 = 0``) ``BayesianRidge`` maximises the
    same evidence, and its ``scores_[-1]`` (with ``compute_score=True``) equals
    ``scores_[-1]`` here at the common optimum.

    References
    ----------
    C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006, §3.3, §3.5
    and §9.3.4.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import BayesianLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=100)
    >>> model = BayesianLinearRegression().fit(X, y)
    >>> np.round(model.coef_, 1)
    array([ 1. , -2. ,  0.5])
    >>> mean, std = model.predict(X[:2], return_std=True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "alpha_init": [None, Interval(Real, 0, None, closed="neither")],
        "beta_init": [None, Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "ard": ["boolean"],
        "verbose": ["verbose"],
        "copy_X": ["boolean"],
    }

    def __init__(
        self,
        *,
        max_iter: int = 300,
        tol: float = 1e-6,
        alpha_init: float | None = None,
        beta_init: float | None = None,
        fit_intercept: bool = True,
        ard: bool = False,
        verbose: int = 0,
        copy_X: bool = True,
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.alpha_init = alpha_init
        self.beta_init = beta_init
        self.fit_intercept = fit_intercept
        self.ard = ard
        self.verbose = verbose
        self.copy_X = copy_X

    def _prepare(self, X, y, sample_weight) -> _Problem:
        """Validate, centre and weight the data, and reduce it by a thin SVD."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = check_data(self, X, reset=True)
        y = check_array(
            y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False, input_name="y"
        )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            kind = "NaN" if np.isnan(y[bad[0]]) else "inf"
            raise ValueError(
                f"y contains {kind} at row {bad[0]} (first of {bad.size} non-finite "
                "targets). Remove these rows first; missing targets are not supported."
            )
        weights = check_sample_weight(sample_weight, X)
        if self.copy_X or X.dtype != np.float64 or not X.flags.writeable:
            X = np.array(X, dtype=np.float64)
        if weights is None:
            n_samples = float(X.shape[0])
        else:
            weights = np.asarray(weights, dtype=np.float64)
            n_samples = float(np.sum(weights))
        if self.fit_intercept:
            X_offset = np.average(X, axis=0, weights=weights)
            y_offset = float(np.average(y, weights=weights))
            X -= X_offset
            t = y - y_offset
        else:
            X_offset = np.zeros(X.shape[1])
            y_offset = 0.0
            t = y.copy()
        if weights is not None:
            root = np.sqrt(weights)
            X *= root[:, None]
            t *= root

        t_var = float(t @ t) / n_samples
        beta = 1.0 / (t_var + _EPS) if self.beta_init is None else float(self.beta_init)
        mean_square = float(np.average(y**2, weights=weights))
        beta_max = 1.0 / (_EPS * (mean_square if mean_square > 0 else 1.0))
        return _Problem(
            design=_reduce(X, t, n_samples),
            X_offset=X_offset,
            y_offset=y_offset,
            beta_init=min(beta, beta_max),
            beta_max=beta_max,
        )

    def _e_step(self, design: _Design, alpha, beta: float) -> _Posterior:
        if self.ard:
            return _e_step_ard(design, alpha, beta)[0]
        return _e_step_isotropic(design, alpha, beta)

    def _m_step(
        self, design: _Design, posterior: _Posterior, beta_max: float
    ) -> tuple[np.ndarray | float, float]:
        """Maximise the expected complete-data log likelihood over the precisions."""
        m = posterior.mean
        if self.ard:
            alpha = 1.0 / (m**2 + posterior.cov_diag)
        else:
            alpha = design.n_features / (float(m @ m) + posterior.trace_cov)
        noise = (posterior.sse + posterior.trace_gram_cov) / design.n_samples
        beta = 1.0 / noise if noise > 0 else beta_max
        return alpha, min(beta, beta_max)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None) -> BayesianLinearRegression:
        r"""Fit the model by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: the features :math:`\boldsymbol\phi(\mathbf x_n)`, one row per
            sample.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of ``k`` counts a row ``k`` times.

        Returns
        -------
        self : BayesianLinearRegression
            The fitted estimator.

        Raises
        ------
        ValueError
            For NaN or infinity in ``X`` or ``y`` (naming the row and column), a ``y`` of
            the wrong shape or length, invalid sample weights or invalid parameters.

        Warns
        -----
        ConvergenceWarning
            If the stopping criterion was not met within ``max_iter`` iterations.
        RuntimeWarning
            If the log evidence decreased by more than rounding can explain.
        """
        problem = self._prepare(X, y, sample_weight)
        design, beta, beta_max = problem.design, problem.beta_init, problem.beta_max
        alpha0 = 1.0 if self.alpha_init is None else float(self.alpha_init)
        alpha = np.full(design.n_features, alpha0) if self.ard else alpha0

        posterior = self._e_step(design, alpha, beta)
        scores = [posterior.log_evidence]
        converged = False
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            alpha, beta = self._m_step(design, posterior, beta_max)
            previous = posterior
            posterior = self._e_step(design, alpha, beta)
            scores.append(posterior.log_evidence)
            change = posterior.log_evidence - previous.log_evidence
            allowed = _DECREASE_RTOL * max(posterior.magnitude, previous.magnitude)
            if change < -allowed:
                warnings.warn(
                    f"The log evidence decreased at iteration {n_iter} by {-change:.6g} "
                    f"(from {previous.log_evidence:.12g} to {posterior.log_evidence:.12g}), "
                    "more than rounding explains; EM guarantees an increase.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if self.verbose >= 2:
                print(
                    f"Iteration {n_iter}: log evidence {posterior.log_evidence:.10g} "
                    f"(change {change:.3g})"
                )
            if abs(change) / design.n_samples <= self.tol:
                converged = True
                break

        if not converged:
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations: the last change of the "
                f"log evidence per sample was {abs(change) / design.n_samples:.3g} > "
                f"tol={self.tol}. Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if self.verbose >= 1:
            state = "Converged" if converged else "Stopped"
            print(
                f"{state} after {n_iter} iterations: log evidence {scores[-1]:.10g}, "
                f"alpha={np.round(alpha, 6)}, beta={beta:.6g}"
            )

        if self.ard:
            self.sigma_ = _e_step_ard(design, alpha, beta, full_cov=True)[1]
            self.alpha_ = np.asarray(alpha, dtype=np.float64)
        else:
            self.sigma_ = _isotropic_cov(design, alpha, beta)
            self.alpha_ = float(alpha)
        self.beta_ = float(beta)
        self.coef_ = posterior.mean
        self.X_offset_ = problem.X_offset
        self.intercept_ = float(problem.y_offset - problem.X_offset @ self.coef_)
        self.scores_ = np.asarray(scores)
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self

    def predict(self, X, return_std: bool = False):
        r"""Mean, and optionally standard deviation, of the predictive distribution.

        The predictive distribution (PRML 3.58-3.59) is Gaussian with mean
        :math:`\mathbf m_N^\top\boldsymbol\phi(\mathbf x)` plus the intercept, and variance

        .. math::

            \sigma_N^2(\mathbf x) = \frac1\beta + \boldsymbol\phi(\mathbf x)^\top
            \mathbf S_N\boldsymbol\phi(\mathbf x),

        with :math:`\boldsymbol\phi(\mathbf x) = \mathbf x - ` ``X_offset_``. As in
        scikit-learn's ``BayesianRidge``, the uncertainty of the intercept is not included.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        return_std : bool, default=False
            Whether to return the standard deviation of the predictive distribution too.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            Predictive mean, in the dtype of ``X`` (float32 or float64).
        y_std : ndarray of shape (n_samples,)
            Predictive standard deviation, in the dtype of ``X``; only with
            ``return_std=True``.
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        dtype = X.dtype
        X = np.asarray(X, dtype=np.float64)
        y_mean = (X @ self.coef_ + self.intercept_).astype(dtype, copy=False)
        if not return_std:
            return y_mean
        phi = X - self.X_offset_
        variance = 1.0 / self.beta_ + np.einsum("ij,jk,ik->i", phi, self.sigma_, phi)
        return y_mean, np.sqrt(np.maximum(variance, 0.0)).astype(dtype, copy=False)
