r"""The Gaussian family's expected complete-data log-likelihood, coordinates and ECM blocks.

With statistics :math:`N_k`, :math:`S_k` and :math:`Q_k` about reference points (see
:class:`emkit.distributions.gaussian.GaussianStatistics`), moved about the means
:math:`\mu_k` so that :math:`Q'_k = \sum_n q_{nk}(x_n - \mu_k)(x_n - \mu_k)^\top`,

.. math::

    Q(\theta) = \sum_k \Big[N_k\big(\log|U_k| - \tfrac D2 \log 2\pi\big)
        - \tfrac12 \operatorname{tr}\big(U_k^\top Q'_k U_k\big)\Big],

with :math:`U_k U_k^\top = \Sigma_k^{-1}` (:math:`Q'_k` is a diagonal for ``'diag'``, a
trace for ``'spherical'``). Registered for :class:`~emkit.distributions.gaussian.Gaussian`
in :mod:`emkit.em.extensions`.
"""

from __future__ import annotations

import numpy as np

from emkit.distributions.gaussian import (
    Gaussian,
    GaussianParams,
    GaussianStatistics,
    _precision_cholesky,
)

__all__ = ["CONDITIONAL_BLOCKS", "conditional_maximize", "expected_log_likelihood", "pack",
           "unpack"]

#: The ECM blocks: the means given the covariances, then the covariances given the means.
CONDITIONAL_BLOCKS = ("means", "covariances")

_EPS = 10 * np.finfo(np.float64).eps


def expected_log_likelihood(
    family: Gaussian, params: GaussianParams, stats: GaussianStatistics
) -> float:
    """:math:`Q(\\theta)` of the module's formula, from float64 statistics."""
    about = stats.about(params.means)
    factors = params.precisions_cholesky
    n_features = params.means.shape[1]
    kind = family.covariance_type
    if kind == "full":
        log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        quadratic = np.einsum("kil,kij,kjl->k", factors, about.sum_xx, factors)
    elif kind == "tied":
        log_det = np.log(np.diag(factors)).sum()
        quadratic = np.einsum("il,kij,jl->k", factors, about.sum_xx, factors)
    elif kind == "diag":
        log_det = np.log(factors).sum(axis=1)
        quadratic = (factors**2 * about.sum_xx).sum(axis=1)
    else:
        log_det = n_features * np.log(factors)
        quadratic = factors**2 * about.sum_xx
    constant = log_det - 0.5 * n_features * np.log(2 * np.pi)
    return float((about.resp_sum * constant).sum() - 0.5 * quadratic.sum())


def pack(family: Gaussian, params: GaussianParams) -> np.ndarray:
    r"""Means, then the precision factors: for ``'full'`` and ``'tied'`` the log-diagonal
    and upper off-diagonal entries of the upper-triangular :math:`U_k` with
    :math:`U_k U_k^\top = \Sigma_k^{-1}` (the one the M-step gives, whatever factor
    ``params`` holds); log-entries for ``'diag'`` and ``'spherical'``."""
    factors = params.precisions_cholesky
    kind = family.covariance_type
    if kind in ("full", "tied"):
        batch = factors if kind == "full" else factors[None]
        batch = _upper_factors(batch @ batch.transpose(0, 2, 1))
        rows, cols = np.triu_indices(batch.shape[1], 1)
        parts = [np.log(np.diagonal(batch, axis1=1, axis2=2)), batch[:, rows, cols]]
        coordinates = np.concatenate([part.ravel() for part in parts])
    else:
        coordinates = np.log(factors).ravel()
    return np.concatenate([params.means.ravel(), coordinates])


def _upper_factors(precisions: np.ndarray) -> np.ndarray:
    r"""Upper-triangular :math:`U` with :math:`U U^\top = P`, positive diagonal: with
    :math:`J` the reversal, :math:`U = J \operatorname{chol}(J P J) J`."""
    flipped = np.linalg.cholesky(precisions[:, ::-1, ::-1])
    return flipped[:, ::-1, ::-1]


def unpack(family: Gaussian, vector: np.ndarray, like: GaussianParams) -> GaussianParams:
    """Parameters from :func:`pack`'s coordinates, shaped as ``like``."""
    n_components, n_features = like.means.shape
    split = n_components * n_features
    means = vector[:split].reshape(n_components, n_features)
    rest = vector[split:]
    kind = family.covariance_type
    if kind in ("full", "tied"):
        count = n_components if kind == "full" else 1
        rows, cols = np.triu_indices(n_features, 1)
        diagonal = np.exp(rest[: count * n_features]).reshape(count, n_features)
        factors = np.zeros((count, n_features, n_features))
        factors[:, np.arange(n_features), np.arange(n_features)] = diagonal
        factors[:, rows, cols] = rest[count * n_features :].reshape(count, len(rows))
        inverses = np.linalg.inv(factors)
        covariances = inverses.transpose(0, 2, 1) @ inverses
        if kind == "tied":
            factors, covariances = factors[0], covariances[0]
    else:
        factors = np.exp(rest).reshape(like.precisions_cholesky.shape)
        covariances = 1.0 / factors**2
    return GaussianParams(means, covariances, factors)


def conditional_maximize(
    family: Gaussian, params: GaussianParams, stats: GaussianStatistics, block: str
) -> GaussianParams:
    r"""One conditional maximisation of Q.

    ``'means'``: :math:`\mu_k = c_k + S_k/N_k` whatever the covariances (Q is a concave
    quadratic in :math:`\mu_k` with that maximiser for every :math:`\Sigma_k`);
    ``'covariances'``: :math:`\Sigma_k = Q'_k/N_k + \epsilon I` about the current means
    (``'tied'``: :math:`\sum_k Q'_k / \sum_k N_k + \epsilon I`).
    """
    if block == "means":
        nk = stats.resp_sum + _EPS
        means = stats.shift + stats.sum_x / nk[:, None]
        return GaussianParams(means, params.covariances, params.precisions_cholesky)
    if block != "covariances":
        raise ValueError(f"unknown block {block!r}; expected one of {CONDITIONAL_BLOCKS}")
    about = stats.about(params.means)
    nk = about.resp_sum + _EPS
    n_features = params.means.shape[1]
    eps = family.reg_covar
    kind = family.covariance_type
    if kind == "full":
        cov = about.sum_xx / nk[:, None, None] + eps * np.eye(n_features)
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
    elif kind == "tied":
        cov = about.sum_xx.sum(axis=0) / nk.sum() + eps * np.eye(n_features)
        cov = 0.5 * (cov + cov.T)
    elif kind == "diag":
        cov = about.sum_xx / nk[:, None] + eps
    else:
        cov = about.sum_xx / (nk * n_features) + eps
    return GaussianParams(params.means, cov, _precision_cholesky(cov, kind))
