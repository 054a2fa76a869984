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

import contextlib
import dataclasses
import math
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import linalg
from scipy.linalg import lapack
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from threadpoolctl import threadpool_limits

from emkit._backend import is_torch, to_numpy
from emkit._validation import check_data, check_sample_weight

__all__ = ["BayesianLinearRegression"]

_EPS = float(np.finfo(np.float64).eps)
_LOG_2PI = math.log(2.0 * math.pi)
# A decrease of the log evidence by more than this fraction of the magnitude of the terms
# it is computed from is more than rounding can explain.
_DECREASE_RTOL = 1e-9
# With ARD, BLAS runs on one thread when no matrix dimension is larger than this.
_SMALL_MATRIX = 256


@dataclasses.dataclass(frozen=True)
class _Design:
    """The centred, weighted data reduced once by a thin SVD ``Phi = U diag(s) Vt``.

    Every quantity the EM iterations need is a function of ``s``, ``Vt``, ``z = U^T t`` and
    the squared norm of the part of ``t`` outside the column space of ``Phi``. With
    ``R = diag(s) Vt`` (K x M, K <= min(n, M)): ``R^T R = Phi^T Phi`` and
    ``R^T z = Phi^T t``.
    """

    singular_values: np.ndarray  # s, (K,), K the numerical rank of Phi
    Vt: np.ndarray  # (K, M)
    reduced: np.ndarray  # R = diag(s) Vt, (K, M)
    z: np.ndarray  # U^T t, (K,)
    residual_outside: float  # ||t - U U^T t||^2
    n_samples: float  # N, the sum of the sample weights
    n_features: int  # M

    @property
    def eigenvalues(self) -> np.ndarray:
        """The eigenvalues of ``Phi^T Phi`` in the row space of ``Phi``: ``s**2``."""
        return self.singular_values**2


def _reduce(Phi: np.ndarray, t: np.ndarray, n_samples: float) -> _Design:
    """The thin SVD of ``Phi`` and the projections of ``t`` the iterations need.

    Singular values below ``max(n, M) * eps * s_max`` are rounding noise of a rank-deficient
    ``Phi`` (collinear features, or centred data with n <= M): they are dropped, as
    ``numpy.linalg.lstsq`` does, so that K is the numerical rank and the part of ``t``
    along their directions counts as residual.
    """
    try:
        U, s, Vt = linalg.svd(Phi, full_matrices=False, check_finite=False)
    except linalg.LinAlgError:
        U, s, Vt = linalg.svd(
            Phi, full_matrices=False, check_finite=False, lapack_driver="gesvd"
        )
    keep = s > max(Phi.shape) * _EPS * (s[0] if s.size else 0.0)
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    z = U.T @ t
    outside = t - U @ z
    return _Design(
        singular_values=s,
        Vt=Vt,
        reduced=s[:, None] * Vt,
        z=z,
        residual_outside=float(outside @ outside),
        n_samples=n_samples,
        n_features=Phi.shape[1],
    )


@dataclasses.dataclass(frozen=True)
class _Problem:
    """The reduced design and what the fit needs besides it."""

    design: _Design
    X_offset: np.ndarray
    y_offset: float
    alpha_init: float
    beta_init: float
    beta_max: float  # keeps the noise variance above eps * mean(y**2)


@dataclasses.dataclass(frozen=True)
class _Posterior:
    r"""One E-step: the posterior :math:`\mathcal N(\mathbf m_N, \mathbf S_N)` of the weights
    at precisions ``alpha`` and ``beta``, the statistics the M-step needs and the evidence.

    ``form`` says how :math:`\mathbf S_N` is held, with
    :math:`\mathbf G = \sqrt\beta\,\mathbf R\mathbf A^{-1/2}`:

    - ``"isotropic"``: ``factor`` holds :math:`d_i = \alpha + \beta\lambda_i`;
    - ``"primal"``: ``factor`` is :math:`\mathbf T^{-1}`, where
      :math:`[\mathbf G; \mathbf I] = \mathbf Q\mathbf T` (so that
      :math:`\mathbf S_N = \mathbf A^{-1/2}\mathbf T^{-1}\mathbf T^{-\top}\mathbf A^{-1/2}`),
      ``basis`` is :math:`\mathbf Q_1 = \mathbf G\mathbf T^{-1}` (the first K rows of
      :math:`\mathbf Q`) and ``solved`` is :math:`\mathbf m_N / \beta`;
    - ``"dual"``: ``factor`` is the lower Cholesky factor :math:`\mathbf L` of
      :math:`\mathbf C = \mathbf I + \mathbf G\mathbf G^\top`, ``basis`` is
      :math:`\mathbf G` and ``solved`` is :math:`\mathbf C^{-1}\mathbf z`.
    """

    form: str
    alpha: float | np.ndarray
    beta: float
    mean: np.ndarray  # m_N
    cov_diag: np.ndarray | None  # diag(S_N), with ARD only
    trace_cov: float  # Tr(S_N)
    sse: float  # ||t - Phi m_N||^2
    trace_gram_cov: float  # Tr(Phi^T Phi S_N)
    log_evidence: float  # ln p(t | alpha, beta)
    evidence_magnitude: float  # sum of the absolute values of the terms of log_evidence
    factor: np.ndarray
    basis: np.ndarray | None = None
    solved: np.ndarray | None = None


def _log_evidence(
    design: _Design,
    log_det_prior: float,
    beta: float,
    sse: float,
    prior_norm: float,
    logdet_precision: float,
) -> tuple[float, float]:
    r"""Bishop (3.86) with all its constants, and the sum of the absolute values of its
    terms (what its rounding error is proportional to).

    .. math::

        \ln p(\mathbf t\mid\alpha,\beta) = \tfrac12\ln|\mathbf A| + \tfrac N2\ln\beta
        - \tfrac\beta2\,\mathrm{sse} - \tfrac12\mathbf m_N^\top\mathbf A\mathbf m_N
        - \tfrac12\ln|\mathbf A + \beta\boldsymbol\Phi^\top\boldsymbol\Phi|
        - \tfrac N2\ln 2\pi
    """
    n = design.n_samples
    terms = (
        0.5 * log_det_prior,
        0.5 * n * math.log(beta),
        -0.5 * beta * sse,
        -0.5 * prior_norm,
        -0.5 * logdet_precision,
        -0.5 * n * _LOG_2PI,
    )
    return math.fsum(terms), math.fsum(abs(term) for term in terms)


def _e_step_isotropic(design: _Design, alpha: float, beta: float) -> _Posterior:
    r"""Posterior of the weights under :math:`\mathbf A = \alpha\mathbf I`, in O(K).

    In the basis of the right singular vectors :math:`\mathbf S_N` is diagonal, with entries
    :math:`1/d_i = 1/(\alpha + \beta\lambda_i)` in the row space of :math:`\boldsymbol\Phi`
    and :math:`1/\alpha` outside it, and :math:`\mathbf m_N` has coordinates
    :math:`\beta s_i z_i / d_i`; the residual in the row space is
    :math:`\alpha z_i / d_i`.
    """
    lam = design.eigenvalues
    K = lam.shape[0]
    M = design.n_features
    d = alpha + beta * lam
    mean_rotated = beta * design.singular_values * design.z / d
    sse = design.residual_outside + float(np.sum((alpha * design.z / d) ** 2))
    prior_norm = alpha * float(mean_rotated @ mean_rotated)
    logdet = float(np.sum(np.log(d))) + (M - K) * math.log(alpha)
    log_evidence, magnitude = _log_evidence(
        design, M * math.log(alpha), beta, sse, prior_norm, logdet
    )
    return _Posterior(
        form="isotropic",
        alpha=alpha,
        beta=beta,
        mean=design.Vt.T @ mean_rotated,
        cov_diag=None,
        trace_cov=float(np.sum(1.0 / d)) + (M - K) / alpha,
        sse=sse,
        trace_gram_cov=float(np.sum(lam / d)),
        log_evidence=log_evidence,
        evidence_magnitude=magnitude,
        factor=d,
    )


def _solve_lower(L: np.ndarray, b: np.ndarray, *, transpose: bool = False) -> np.ndarray:
    """Solve ``L x = b`` (or ``L^T x = b``) for a lower triangular ``L``, by LAPACK's trtrs."""
    if L.shape[0] == 0:
        return np.array(b, dtype=np.float64)
    x, info = lapack.dtrtrs(L, b, lower=1, trans=int(transpose))
    if info != 0:
        raise linalg.LinAlgError(f"triangular solve failed (LAPACK info={info})")
    return x


def _qr_identity_below(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""QR factorisation :math:`[\mathbf G; \mathbf I] = \mathbf Q\mathbf T` with a positive
    diagonal, so that :math:`\mathbf T^\top\mathbf T = \mathbf I + \mathbf G^\top\mathbf G`.

    :math:`\mathbf G^\top\mathbf G` is never formed, so the identity is not lost to rounding
    however large :math:`\mathbf G` is, and :math:`\mathbf T` is never singular.
    """
    Q, T = np.linalg.qr(np.vstack([G, np.eye(G.shape[1])]))
    signs = np.where(np.diag(T) < 0, -1.0, 1.0)
    return Q * signs, T * signs[:, None]


def _e_step_ard(design: _Design, alpha: np.ndarray, beta: float) -> _Posterior:
    r"""Posterior of the weights under :math:`\mathbf A = \operatorname{diag}(\alpha_j)`.

    With :math:`\mathbf G = \sqrt\beta\,\mathbf R\mathbf A^{-1/2}` (K x M), the precision is
    :math:`\mathbf S_N^{-1} = \mathbf A + \beta\mathbf R^\top\mathbf R = \mathbf A^{1/2}
    (\mathbf I + \mathbf G^\top\mathbf G)\mathbf A^{1/2}`.

    When :math:`\boldsymbol\Phi` has full column rank (K = M), the QR factorisation
    :math:`[\mathbf G; \mathbf I] = \mathbf Q\mathbf T`
    gives :math:`\mathbf I + \mathbf G^\top\mathbf G = \mathbf T^\top\mathbf T`, and
    :math:`\mathbf m_N = \mathbf A^{-1/2}\mathbf T^{-1}\mathbf Q_1^\top\sqrt\beta\,\mathbf z`
    solves the least-squares problem
    :math:`\min_{\mathbf u}\lVert\sqrt\beta\,\mathbf z - \mathbf G\mathbf u\rVert^2 +
    \lVert\mathbf u\rVert^2`, which stays accurate however large :math:`\beta` is.

    Otherwise (fewer samples than features, or collinear features), the K x K matrix
    :math:`\mathbf C = \mathbf I + \mathbf G\mathbf G^\top` is factorised instead, and
    the Woodbury identity gives
    :math:`\mathbf S_N = \mathbf A^{-1} - \beta\mathbf A^{-1}\mathbf R^\top\mathbf C^{-1}
    \mathbf R\mathbf A^{-1}`, :math:`\mathbf m_N = \beta\mathbf A^{-1}\mathbf R^\top
    \mathbf C^{-1}\mathbf z` and :math:`|\mathbf S_N^{-1}| = |\mathbf A|\,|\mathbf C|`.

    Only triangular systems are solved.
    """
    R = design.reduced
    z = design.z
    K, M = R.shape
    scale = 1.0 / np.sqrt(alpha)
    G = (math.sqrt(beta) * R) * scale
    log_det_prior = float(np.sum(np.log(alpha)))
    if K == M:
        Q, T = _qr_identity_below(G)
        Q1 = Q[:K]
        T_inv = _solve_lower(np.ascontiguousarray(T.T), np.eye(M)).T
        cov_diag = scale**2 * np.sum(T_inv**2, axis=1)
        mean = scale * (T_inv @ (Q1.T @ (math.sqrt(beta) * z)))
        # Tr(R^T R S_N) = Tr(G (T^T T)^{-1} G^T) / beta, and G T^{-1} = Q_1
        trace_gram_cov = float(np.sum(Q1**2)) / beta
        logdet = log_det_prior + 2.0 * float(np.sum(np.log(np.diag(T))))
        form, factor, basis, solved = "primal", T_inv, Q1, mean / beta
    else:
        L = _qr_identity_below(G.T)[1].T
        W = _solve_lower(L, G)
        # diag(S_N) = diag(A^{-1/2} (I + G^T G)^{-1} A^{-1/2}), where
        # (I + G^T G)^{-1} = I - G^T C^{-1} G has a diagonal of at least 1 / (1 + G_j^T G_j)
        # (which keeps it positive where the subtraction loses its digits).
        inverse_diag = np.maximum(1.0 - np.sum(W**2, axis=0), 1.0 / (1.0 + np.sum(G**2, axis=0)))
        cov_diag = scale**2 * inverse_diag
        half_solved = _solve_lower(L, z)
        mean = math.sqrt(beta) * scale * (W.T @ half_solved)
        # Tr(R S_N R^T) = Tr((C - I) C^{-1}) / beta = (K - Tr C^{-1}) / beta
        trace_inv_C = float(np.sum(_solve_lower(L, np.eye(K)) ** 2))
        trace_gram_cov = max(K - trace_inv_C, 0.0) / beta
        logdet = log_det_prior + 2.0 * float(np.sum(np.log(np.diag(L))))
        solved = _solve_lower(L, half_solved, transpose=True)
        form, factor, basis = "dual", L, G
    residual = z - R @ mean
    sse = design.residual_outside + float(residual @ residual)
    prior_norm = float(np.sum(alpha * mean**2))
    log_evidence, magnitude = _log_evidence(design, log_det_prior, beta, sse, prior_norm, logdet)
    return _Posterior(
        form=form,
        alpha=alpha,
        beta=beta,
        mean=mean,
        cov_diag=cov_diag,
        trace_cov=float(np.sum(cov_diag)),
        sse=sse,
        trace_gram_cov=trace_gram_cov,
        log_evidence=log_evidence,
        evidence_magnitude=magnitude,
        factor=factor,
        basis=basis,
        solved=solved,
    )


def _posterior_cov(design: _Design, posterior: _Posterior) -> np.ndarray:
    r"""The full posterior covariance :math:`\mathbf S_N` (M x M)."""
    M = design.n_features
    alpha, beta = posterior.alpha, posterior.beta
    if posterior.form == "isotropic":
        # S_N = I / alpha + V diag(1 / d_i - 1 / alpha) V^T
        lam = design.eigenvalues
        cov = (design.Vt.T * (-beta * lam / (alpha * posterior.factor))) @ design.Vt
        cov[np.diag_indices(M)] += 1.0 / alpha
        return cov
    if posterior.form == "primal":
        half = posterior.factor / np.sqrt(alpha)[:, None]
        return half @ half.T
    W = _solve_lower(posterior.factor, posterior.basis) / np.sqrt(alpha)
    cov = -(W.T @ W)
    cov[np.diag_indices(M)] = posterior.cov_diag
    return cov


def _log_det_identity_plus(E: np.ndarray) -> tuple[float, float]:
    r""":math:`\ln|\mathbf I + \mathbf E|` for a symmetric :math:`\mathbf E`, as the sum of
    ``log1p`` of its eigenvalues (accurate when :math:`\mathbf E` is small), and the sum of
    their absolute values; NaN when :math:`\mathbf I + \mathbf E` is not positive."""
    if E.size == 0:
        return 0.0, 0.0
    eigenvalues = linalg.eigvalsh(0.5 * (E + E.T), check_finite=False)
    if np.min(eigenvalues) <= -1.0:
        return math.nan, math.inf
    terms = np.log1p(eigenvalues)
    return float(np.sum(terms)), float(np.sum(np.abs(terms)))


def _evidence_change(design: _Design, old: _Posterior, new: _Posterior) -> tuple[float, float]:
    r"""The increase of the log evidence from ``old`` to ``new``, and the magnitude of the
    terms it is the sum of (its rounding error is proportional to it).

    The two evidences are nearly equal close to convergence, so their difference loses all
    its digits there. :func:`_evidence_change_from_precisions` writes every term as a
    function of the differences of the precisions instead, which is accurate far below the
    rounding of the evidence itself. When its terms are the larger ones (a large step, or a
    nearly singular posterior) the plain difference is used.
    """
    difference = new.log_evidence - old.log_evidence
    difference_magnitude = old.evidence_magnitude + new.evidence_magnitude
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        change, magnitude = _evidence_change_from_precisions(design, old, new)
    if math.isfinite(change) and magnitude < difference_magnitude:
        return change, magnitude
    return difference, difference_magnitude


def _evidence_change_from_precisions(
    design: _Design, old: _Posterior, new: _Posterior
) -> tuple[float, float]:
    r"""The increase of the log evidence, written with the differences of the precisions.

    With :math:`q = \mathbf z^\top\mathbf C^{-1}\mathbf z`, where
    :math:`\mathbf C = \mathbf I + \beta\mathbf R\mathbf A^{-1}\mathbf R^\top`, the log
    evidence is :math:`\tfrac N2\ln\beta - \tfrac12\ln|\mathbf C| - \tfrac\beta2(r + q) -
    \tfrac N2\ln 2\pi`. Logarithms of ratios become ``log1p`` of relative changes, the
    change of :math:`\ln|\mathbf C|` the ``log1p`` of the eigenvalues of the relative change
    of the factorised matrix, and the change of :math:`q` a product of the change of
    :math:`\mathbf C` with the two solutions.
    """
    N = design.n_samples
    d_beta = new.beta - old.beta
    d_alpha = new.alpha - old.alpha
    log_ratio_beta = math.log1p(d_beta / old.beta)
    terms = [0.5 * N * log_ratio_beta, -0.5 * d_beta * design.residual_outside]
    logdet_change, logdet_size = 0.0, 0.0
    if old.form == "isotropic":
        # ln|C| = sum ln(d_i / alpha) and beta q = sum z_i^2 g_i, where
        # g_i = alpha beta / d_i and 1 / g_i = 1 / beta + lam_i / alpha.
        lam = design.eigenvalues
        g_old = old.alpha * old.beta / old.factor
        g_new = new.alpha * new.beta / new.factor
        d_inv_g = d_beta / (old.beta * new.beta) + lam * d_alpha / (old.alpha * new.alpha)
        terms += [
            0.5 * lam.shape[0] * math.log1p(d_alpha / old.alpha),
            -0.5 * np.log1p((d_alpha + d_beta * lam) / old.factor),
            -0.5 * design.z**2 * g_old * g_new * d_inv_g,
        ]
    elif old.form == "primal":
        # ln|C| = ln|P| - sum ln alpha_j, with P = A + beta R^T R = L L^T, L = A^{1/2} T^T.
        # The change of ln|P| is ln|I + L^{-1} (P' - P) L^{-T}|, where
        # L^{-1} (P' - P) L^{-T} = (d_beta / beta) Q_1^T Q_1 + T^{-T} diag(d_alpha / alpha) T^{-1}.
        Q1, T_inv = old.basis, old.factor
        E = (d_beta / old.beta) * (Q1.T @ Q1) + (T_inv.T * (d_alpha / old.alpha)) @ T_inv
        logdet_change, logdet_size = _log_det_identity_plus(E)
        # beta q = beta |z|^2 - beta^2 h^T P^{-1} h with h = R^T z; u = P^{-1} h.
        R = design.reduced
        h = R.T @ design.z
        u_old, u_new = old.solved, new.solved
        quadratic = d_beta * (new.beta + old.beta) * float(h @ u_new) - old.beta**2 * (
            float(d_alpha @ (u_new * u_old)) + d_beta * float((R @ u_new) @ (R @ u_old))
        )
        terms += [
            0.5 * np.log1p(d_alpha / old.alpha),
            -0.5 * d_beta * float(design.z @ design.z),
            0.5 * quadratic,
        ]
    else:
        # C' - C = G diag(D) G^T with D_j = (beta' / alpha'_j) / (beta / alpha_j) - 1.
        G, L = old.basis, old.factor
        D = np.expm1(log_ratio_beta - np.log1p(d_alpha / old.alpha))
        W = _solve_lower(L, G)
        logdet_change, logdet_size = _log_det_identity_plus((W * D) @ W.T)
        v_old, v_new = old.solved, new.solved
        terms += [
            -0.5 * d_beta * float(design.z @ v_new),
            0.5 * old.beta * float(((G.T @ v_new) * D) @ (G.T @ v_old)),
        ]
    total = math.fsum([*(float(np.sum(term)) for term in terms), -0.5 * logdet_change])
    magnitude = math.fsum([*(float(np.sum(np.abs(term))) for term in terms), 0.5 * logdet_size])
    return total, magnitude


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
        ``ard=True``). ``None`` means
        :math:`\operatorname{Tr}(\boldsymbol\Phi^\top\boldsymbol\Phi)/\lVert\mathbf
        t\rVert^2`, the precision for which the prior alone accounts for the spread of the
        (centred) targets; with ``beta_init=None`` too, the iterations are then the same
        whatever the units of ``X`` and ``y``.
    beta_init : float, default=None
        Initial noise precision :math:`\beta`. ``None`` means one over the (weighted)
        variance of ``y`` (its mean square if ``fit_intercept=False``).
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
        scikit-learn's ``BayesianRidge`` and ``ARDRegression``. At most
        :math:`1/(\epsilon\,\overline{y^2})` (see Notes).
    sigma_ : ndarray of shape (n_features, n_features)
        Posterior covariance :math:`\mathbf S_N` of the weights, in float64.
    scores_ : ndarray of shape (n_iter_ + 1,)
        Log evidence :math:`\ln p(\mathbf t\mid\alpha,\beta)` (PRML 3.86, with all
        constants, for the whole data set) at the initial precisions and after each
        iteration; non-decreasing up to rounding. ``scores_[-1]`` belongs to ``alpha_`` and
        ``beta_``.
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
    covariance is diagonal, :math:`1/(\alpha+\beta\lambda_i)`. With ARD the posterior is
    computed from a QR factorisation of an M x M problem when :math:`\boldsymbol\Phi` has
    full column rank, otherwise of a K x K one (K its rank) through the Woodbury identity,
    never by inverting :math:`\mathbf S_N^{-1}`; for small problems BLAS then runs on one
    thread, where threads only add overhead. Both n > M and n < M work, as do
    rank-deficient and collinear designs: singular values below
    :math:`\max(n, M)\,\epsilon\,s_{\max}` count as zero.

    Close to convergence two successive evidences agree to nearly all their digits, so the
    change tested against ``tol`` (and for monotonicity) is not their difference but an
    expression in the differences of the precisions (``log1p`` of relative changes), which
    stays accurate far below the rounding of the evidence: ``tol`` can be set as low as
    ``1e-25`` to run EM until the precisions stop changing in floating point (when the
    evidence has an interior maximum). ``scores_`` themselves are non-decreasing up to
    their rounding.

    When the data can be fitted exactly (typically n <= M), the evidence may keep growing as
    the noise vanishes. The noise variance is then kept above
    :math:`\epsilon\,\overline{y^2}` (machine epsilon times the mean square of ``y``), so
    ``beta_`` stays finite.

    Fitting is done in float64 whatever the dtype of ``X``; fitted attributes are float64.
    :meth:`predict` returns the dtype of its input (float32 stays float32). PyTorch tensors
    are accepted and copied to host memory; results are NumPy arrays.

    Sample weights act as repeated rows: integer weights give the same fit as repeating
    each row that many times, and :math:`N` is the sum of the weights.

    Names differ from scikit-learn's: here ``alpha_`` is the weight precision and
    ``beta_`` the noise precision, as in Bishop's book; in ``BayesianRidge``, ``alpha_`` is
    the noise precision and ``lambda_`` the weight precision. With its hyperpriors set to
    zero (``alpha_1 = alpha_2 = lambda_1 = lambda_2 = 0``) ``BayesianRidge`` maximises the
    same evidence, and its ``scores_[-1]`` (with ``compute_score=True``) equals
    ``scores_[-1]`` here at the common optimum. ``ARDRegression`` with zero hyperpriors
    and no pruning (a huge ``threshold_lambda``) reaches the same point as ``ard=True``
    where the optimum has no infinite precision; its ``scores_`` leave out the
    :math:`-\tfrac N2\ln 2\pi` term.

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
        if is_torch(X):
            X = to_numpy(X)
        if is_torch(y):
            y = to_numpy(y)
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
            weights = to_numpy(weights, dtype=np.float64)
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

        design = _reduce(X, t, n_samples)
        mean_square = float(np.average(y**2, weights=weights))
        beta_max = 1.0 / (_EPS * (mean_square if mean_square > 0 else 1.0))
        t_norm2 = float(t @ t)
        gram_trace = float(np.sum(design.eigenvalues))
        if self.beta_init is not None:
            beta = float(self.beta_init)
        elif t_norm2 > 0:
            beta = n_samples / t_norm2
        else:
            beta = beta_max
        if self.alpha_init is not None:
            alpha = float(self.alpha_init)
        elif t_norm2 > 0 and gram_trace > 0:
            alpha = gram_trace / t_norm2
        else:
            alpha = 1.0
        return _Problem(
            design=design,
            X_offset=X_offset,
            y_offset=y_offset,
            alpha_init=alpha,
            beta_init=min(beta, beta_max),
            beta_max=beta_max,
        )

    def _e_step(self, design: _Design, alpha: float | np.ndarray, beta: float) -> _Posterior:
        """The posterior of the weights at precisions ``alpha`` and ``beta``."""
        if self.ard:
            return _e_step_ard(design, alpha, beta)
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

    def _iterate(
        self, design: _Design, alpha_init: float, beta: float, beta_max: float
    ) -> tuple[_Posterior, list[float], int, float]:
        """Alternate M- and E-steps until the evidence stops increasing or ``max_iter``.

        Returns the last posterior, the log evidence after every E-step, the number of
        iterations and the last change of the log evidence.
        """
        alpha = np.full(design.n_features, alpha_init) if self.ard else alpha_init
        posterior = self._e_step(design, alpha, beta)
        scores = [posterior.log_evidence]
        for n_iter in range(1, self.max_iter + 1):
            alpha, beta = self._m_step(design, posterior, beta_max)
            previous = posterior
            posterior = self._e_step(design, alpha, beta)
            scores.append(posterior.log_evidence)
            change, magnitude = _evidence_change(design, previous, posterior)
            if change < -_DECREASE_RTOL * magnitude:
                warnings.warn(
                    f"The log evidence decreased at iteration {n_iter} by {-change:.6g} "
                    f"(from {previous.log_evidence:.12g} to {posterior.log_evidence:.12g}), "
                    "more than rounding explains; EM guarantees an increase.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            if self.verbose >= 2:
                print(
                    f"Iteration {n_iter}: log evidence {posterior.log_evidence:.10g} "
                    f"(change {change:.3g})"
                )
            if abs(change) / design.n_samples <= self.tol:
                break
        return posterior, scores, n_iter, change

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
        design = problem.design
        small = max(design.singular_values.shape[0], design.n_features) <= _SMALL_MATRIX
        # Threads only add overhead to the factorisations of small matrices, and much of it
        # when the machine is busy.
        threads = (
            threadpool_limits(limits=1, user_api="blas")
            if self.ard and small
            else contextlib.nullcontext()
        )
        with threads:
            posterior, scores, n_iter, change = self._iterate(
                design, problem.alpha_init, problem.beta_init, problem.beta_max
            )
        alpha, beta = posterior.alpha, posterior.beta
        converged = abs(change) / design.n_samples <= self.tol

        if not converged:
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations: the last change of the "
                f"log evidence per sample was {abs(change) / design.n_samples:.3g} > "
                f"tol={self.tol}. Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.verbose >= 1:
            state = "Converged" if converged else "Stopped"
            print(
                f"{state} after {n_iter} iterations: log evidence {scores[-1]:.10g}, "
                f"alpha={np.round(alpha, 6)}, beta={beta:.6g}"
            )

        self.sigma_ = _posterior_cov(design, posterior)
        self.alpha_ = np.asarray(alpha, dtype=np.float64) if self.ard else float(alpha)
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
        X = to_numpy(check_data(self, X, reset=False))
        dtype = X.dtype
        X = np.asarray(X, dtype=np.float64)
        y_mean = (X @ self.coef_ + self.intercept_).astype(dtype, copy=False)
        if not return_std:
            return y_mean
        phi = X - self.X_offset_
        variance = 1.0 / self.beta_ + np.sum((phi @ self.sigma_) * phi, axis=1)
        return y_mean, np.sqrt(np.maximum(variance, 0.0)).astype(dtype, copy=False)
