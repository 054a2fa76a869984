r"""Multivariate Gaussian components with four covariance structures.

For component :math:`k` with mean :math:`\mu_k` and precision Cholesky factor :math:`U_k`
(:math:`\Sigma_k^{-1} = U_k U_k^\top`),

.. math::

    \log \mathcal N(x \mid \mu_k, \Sigma_k)
      = -\tfrac12 \left(D \log 2\pi + \lVert (x - \mu_k)^\top U_k \rVert^2\right)
        + \sum_d \log (U_k)_{dd}.

The sufficient statistics are :math:`N_k = \sum_n \gamma_{nk}`,
:math:`S_k = \sum_n \gamma_{nk} x_n` and the second moments
:math:`Q_k = \sum_n \gamma_{nk} x_n x_n^\top` (only the diagonal for ``'diag'``, only the trace
for ``'spherical'``, only :math:`\sum_n x_n x_n^\top` for ``'tied'``); the M-step is the
closed form of Bishop (2006), eqs. 9.24–9.27,

.. math::

    \mu_k = S_k / N_k, \qquad \Sigma_k = Q_k / N_k - \mu_k \mu_k^\top + \epsilon I,

with the regulariser :math:`\epsilon` = ``reg_covar`` that keeps each covariance away from
the singularities of the likelihood (a component collapsing on one point). Data reach this
module centred on their mean (see :mod:`emkit.executors`), so the second moments do not
cancel catastrophically for data far from the origin.

Every array operation goes through the array-API namespace of the data, so the same code
runs on NumPy and on PyTorch tensors (CPU or CUDA). The E-step is two matrix products per
chunk of rows: one for the Mahalanobis distances of all components at once, one for the
statistics.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from emkit._backend import Array, as_backend, namespace
from emkit.distributions._base import Statistics

__all__ = ["COVARIANCE_TYPES", "Gaussian", "GaussianParams", "GaussianStatistics"]

CovarianceType = Literal["full", "tied", "diag", "spherical"]
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class SingularCovarianceError(ValueError):
    """A component's covariance is not positive definite, even after regularisation."""


@dataclasses.dataclass(frozen=True)
class GaussianParams:
    """Parameters of K Gaussian components (float64, host memory).

    Shapes follow scikit-learn: ``means`` (K, D); ``covariances`` and
    ``precisions_cholesky`` (K, D, D) for ``'full'``, (D, D) for ``'tied'``, (K, D) for
    ``'diag'``, (K,) for ``'spherical'``.
    """

    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


@dataclasses.dataclass(frozen=True)
class GaussianStatistics(Statistics):
    r"""Responsibility-weighted sums :math:`N_k`, :math:`S_k`, :math:`Q_k` (see module)."""

    resp_sum: Array
    sum_x: Array
    sum_xx: Array


def _precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    r"""Upper factor :math:`U` with :math:`U U^\top = \Sigma^{-1}`, naming a failing component.

    :math:`U = L^{-\top}` for the Cholesky factor :math:`\Sigma = L L^\top`, as scikit-learn.
    """
    if covariance_type in ("full", "tied"):
        batch = covariances[None] if covariance_type == "tied" else covariances
        try:
            chol = np.linalg.cholesky(batch)
        except np.linalg.LinAlgError:
            for k, cov in enumerate(batch):
                try:
                    np.linalg.cholesky(cov)
                except np.linalg.LinAlgError:
                    raise _singular_error(k, covariance_type) from None
            raise
        factors = np.empty_like(batch)
        for k, lower in enumerate(chol):
            inverse, info = lapack.dtrtri(lower, lower=1)
            if info != 0:
                raise _singular_error(k, covariance_type)
            factors[k] = inverse.T
        return factors[0] if covariance_type == "tied" else factors
    flat = covariances.reshape(covariances.shape[0], -1)
    bad = np.flatnonzero((flat <= 0.0).any(axis=1))
    if bad.size:
        raise _singular_error(int(bad[0]), covariance_type)
    return 1.0 / np.sqrt(covariances)


def _singular_error(component: int, covariance_type: str) -> SingularCovarianceError:
    which = "the shared covariance" if covariance_type == "tied" else f"component {component}"
    return SingularCovarianceError(
        f"Fitting failed: {which} has an ill-defined covariance (not positive definite), "
        "typically because it collapsed on a single point or on a subspace. Remedies: increase "
        "reg_covar, decrease n_components, use covariance_type='diag' or 'spherical', remove "
        "duplicated or constant columns, or scale the input data."
    )


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """Family of multivariate Gaussian components.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        Each component has its own general covariance (``'full'``), all components share
        one (``'tied'``), each has a diagonal one (``'diag'``) or a multiple of the identity
        (``'spherical'``).
    reg_covar : float
        Non-negative regulariser :math:`\\epsilon` added to the diagonal of every covariance.
    """

    covariance_type: CovarianceType = "full"
    reg_covar: float = 1e-6

    # ------------------------------------------------------------------ E-step
    def prepare(self, params: GaussianParams, like: Array) -> tuple[Array, Array]:
        r"""Coefficients turning a chunk's features into Mahalanobis distances.

        Returns ``(B, log_det)`` such that ``log_prob`` is one matrix product of the chunk's
        features with ``B``: for ``'full'``, :math:`[x, 1] B` stacks the whitened residuals
        :math:`(x - \mu_k)^\top U_k` of all components; for the other structures,
        :math:`[x^2, x, 1] B` (or with :math:`\lVert x\rVert^2`) are the distances
        themselves.
        """
        means, prec_chol = params.means, params.precisions_cholesky
        n_components, n_features = means.shape
        kind = self.covariance_type
        if kind == "full":
            top = prec_chol.transpose(1, 0, 2).reshape(n_features, n_components * n_features)
            shift = -np.einsum("kd,kde->ke", means, prec_chol).reshape(1, -1)
            coef = np.concatenate([top, shift])
            log_det = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
        elif kind == "tied":
            # rows 0..D-1: U; rows D..D+K-1: the whitened centres -mu_k U
            coef = np.concatenate([prec_chol, -(means @ prec_chol)])
            log_det = np.full(n_components, np.log(np.diag(prec_chol)).sum())
        elif kind == "diag":
            precisions = prec_chol**2
            coef = np.concatenate(
                [
                    precisions.T,
                    -2.0 * (means * precisions).T,
                    ((means**2) * precisions).sum(axis=1)[None, :],
                ]
            )
            log_det = np.log(prec_chol).sum(axis=1)
        else:
            precisions = prec_chol**2
            coef = np.concatenate(
                [
                    precisions[None, :],
                    -2.0 * means.T * precisions,
                    ((means**2).sum(axis=1) * precisions)[None, :],
                ]
            )
            log_det = n_features * np.log(prec_chol)
        return as_backend(coef, like), as_backend(log_det, like)

    def log_prob(self, X: Array, prepared: tuple[Array, Array]) -> Array:
        r""":math:`\log \mathcal N(x_n \mid \mu_k, \Sigma_k)`, shape (n, K)."""
        xp = namespace(X)
        coef, log_det = prepared
        n, n_features = X.shape
        n_components = log_det.shape[0]
        ones = xp.ones((n, 1), dtype=X.dtype, device=getattr(X, "device", None))
        kind = self.covariance_type
        if kind == "full":
            whitened = xp.concat([X, ones], axis=1) @ coef
            whitened = xp.reshape(whitened, (n, n_components, n_features))
            maha = xp.sum(whitened * whitened, axis=2)
        elif kind == "tied":
            whitened = X @ coef[:n_features, :]
            centres = coef[n_features:, :]
            maha = (
                xp.sum(whitened * whitened, axis=1)[:, None]
                + 2.0 * (whitened @ centres.T)
                + xp.sum(centres * centres, axis=1)[None, :]
            )
        elif kind == "diag":
            maha = xp.concat([X * X, X, ones], axis=1) @ coef
        else:
            maha = xp.concat([xp.sum(X * X, axis=1, keepdims=True), X, ones], axis=1) @ coef
        return -0.5 * (n_features * math.log(2 * math.pi) + maha) + log_det

    def statistics(self, X: Array, resp: Array) -> GaussianStatistics:
        r"""Sums :math:`N_k, S_k, Q_k` of a chunk; ``resp`` already carries sample weights."""
        xp = namespace(X)
        n, n_features = X.shape
        n_components = resp.shape[1]
        resp_sum = xp.sum(resp, axis=0)
        sum_x = resp.T @ X
        kind = self.covariance_type
        if kind == "full":
            weighted = xp.reshape(resp[:, :, None] * X[:, None, :], (n, n_components * n_features))
            sum_xx = xp.reshape(weighted.T @ X, (n_components, n_features, n_features))
        elif kind == "tied":
            sum_xx = (X * xp.sum(resp, axis=1)[:, None]).T @ X
        elif kind == "diag":
            sum_xx = resp.T @ (X * X)
        else:
            sum_xx = resp.T @ xp.sum(X * X, axis=1)
        return GaussianStatistics(resp_sum=resp_sum, sum_x=sum_x, sum_xx=sum_xx)

    # ------------------------------------------------------------------ M-step
    def maximize(self, stats: GaussianStatistics) -> GaussianParams:
        r"""Closed-form M-step (Bishop 9.24–9.25) on float64 host statistics.

        :math:`N_k` is increased by :math:`10\,\varepsilon` (machine epsilon) before dividing,
        as scikit-learn does, so that an empty component yields finite numbers; empty
        components are re-seeded by the caller (:meth:`emkit.em.Mixture.maximize`).
        """
        nk = stats.resp_sum + 10 * np.finfo(np.float64).eps
        means = stats.sum_x / nk[:, None]
        kind = self.covariance_type
        if kind == "full":
            cov = stats.sum_xx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
            cov = 0.5 * (cov + cov.transpose(0, 2, 1))
            cov += self.reg_covar * np.eye(means.shape[1])
        elif kind == "tied":
            cov = (stats.sum_xx - (nk * means.T) @ means) / nk.sum()
            cov = 0.5 * (cov + cov.T) + self.reg_covar * np.eye(means.shape[1])
        elif kind == "diag":
            cov = stats.sum_xx / nk[:, None] - means**2 + self.reg_covar
        else:
            cov = (stats.sum_xx / nk - (means**2).sum(axis=1)) / means.shape[1] + self.reg_covar
        return GaussianParams(means, cov, _precision_cholesky(cov, kind))

    def regularization_gap(self, params: GaussianParams, stats: GaussianStatistics) -> float:
        r"""How far below the exact maximum of Q the regularised M-step may land, per sample.

        Adding :math:`\epsilon I` to the maximiser :math:`\Sigma^*` lowers the expected
        complete-data log-likelihood per unit of responsibility by
        :math:`\tfrac12 \sum_i [\log(1 + \epsilon/\lambda_i) - \epsilon/(\lambda_i + \epsilon)]`
        over the eigenvalues :math:`\lambda_i` of :math:`\Sigma^*`: about
        :math:`\tfrac14 (\epsilon/\lambda)^2`, and unbounded for a component collapsing
        on a point. The log-likelihood may then decrease by up to this amount.
        """
        eps = self.reg_covar
        if eps == 0.0:
            return 0.0
        kind = self.covariance_type
        cov = params.covariances
        if kind in ("full", "tied"):
            eigenvalues = np.linalg.eigvalsh(cov) - eps
        elif kind == "diag":
            eigenvalues = cov - eps
        else:
            eigenvalues = np.repeat((cov - eps)[:, None], params.means.shape[1], axis=1)
        if (eigenvalues <= 0).any():
            return np.inf
        loss = 0.5 * (np.log1p(eps / eigenvalues) - eps / (eigenvalues + eps))
        if kind == "tied":
            return float(loss.sum())
        share = stats.resp_sum / stats.resp_sum.sum()
        return float(share @ loss.reshape(len(share), -1).sum(axis=1))

    def from_precisions(
        self, means: np.ndarray, precisions: np.ndarray
    ) -> GaussianParams:
        """Parameters from means and precision matrices (user-supplied starting values)."""
        kind = self.covariance_type
        if kind in ("full", "tied"):
            batch = precisions[None] if kind == "tied" else precisions
            factors = np.empty_like(batch)
            covariances = np.empty_like(batch)
            for k, precision in enumerate(batch):
                try:
                    factors[k] = linalg.cholesky(precision, lower=True)
                except linalg.LinAlgError:
                    raise ValueError(
                        f"precisions_init[{k}] is not symmetric positive definite."
                    ) from None
                covariances[k] = linalg.cho_solve((factors[k], True), np.eye(len(precision)))
            if kind == "tied":
                factors, covariances = factors[0], covariances[0]
            return GaussianParams(means, covariances, factors)
        return GaussianParams(means, 1.0 / precisions, np.sqrt(precisions))

    def reseed(
        self, params: GaussianParams, stats: GaussianStatistics, component: int,
        point: np.ndarray,
    ) -> GaussianParams:
        """Move an empty component onto ``point`` with the pooled covariance of the data."""
        total = stats.resp_sum.sum()
        mean = stats.sum_x.sum(axis=0) / total
        kind = self.covariance_type
        means = params.means.copy()
        means[component] = point
        if kind == "tied":
            return dataclasses.replace(params, means=means)
        second = stats.sum_xx.sum(axis=0) / total
        cov = params.covariances.copy()
        if kind == "full":
            cov[component] = second - np.outer(mean, mean) + self.reg_covar * np.eye(len(mean))
        elif kind == "diag":
            cov[component] = second - mean**2 + self.reg_covar
        else:
            cov[component] = (second - mean @ mean) / len(mean) + self.reg_covar
        return GaussianParams(means, cov, _precision_cholesky(cov, kind))

    # ------------------------------------------------------------------ the rest
    def n_parameters(self, params: GaussianParams) -> int:
        """Free parameters: K·D means plus the covariance entries of the structure."""
        n_components, n_features = params.means.shape
        per_matrix = n_features * (n_features + 1) // 2
        covariance = {
            "full": n_components * per_matrix,
            "tied": per_matrix,
            "diag": n_components * n_features,
            "spherical": n_components,
        }[self.covariance_type]
        return n_components * n_features + covariance

    def sample(
        self, params: GaussianParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` draws from each component, in component order (as scikit-learn)."""
        means, cov = params.means, params.covariances
        kind = self.covariance_type
        if kind in ("full", "tied"):
            covs = cov if kind == "full" else [cov] * len(means)
            draws = [
                rng.multivariate_normal(m, c, int(n))
                for m, c, n in zip(means, covs, counts, strict=True)
            ]
        else:
            scale = np.sqrt(cov if kind == "diag" else cov[:, None] * np.ones_like(means))
            draws = [
                m + rng.standard_normal(size=(int(n), means.shape[1])) * s
                for m, s, n in zip(means, scale, counts, strict=True)
            ]
        return np.vstack(draws)
