r"""Gaussian components on rows with missing entries (NaN), marginalised exactly.

For a row :math:`x` whose entries :math:`o` are observed and :math:`m` missing, under
component :math:`k` with mean :math:`\mu` and covariance :math:`\Sigma`, the E-step uses the
marginal density of the observed block,

.. math::

    \log p(x_o \mid z = k) = \log \mathcal N(x_o \mid \mu_o, \Sigma_{oo})
      = -\tfrac12 \left(|o| \log 2\pi + \log|\Sigma_{oo}|
        + (x_o - \mu_o)^\top \Sigma_{oo}^{-1} (x_o - \mu_o)\right),

and the missing block given the observed one, which is Gaussian (Ghahramani and Jordan
1994):

.. math::

    \hat x_m = E[x_m \mid x_o, z = k] = \mu_m + \Sigma_{mo} \Sigma_{oo}^{-1} (x_o - \mu_o),
    \qquad
    C = \operatorname{Cov}[x_m \mid x_o, z = k]
      = \Sigma_{mm} - \Sigma_{mo} \Sigma_{oo}^{-1} \Sigma_{om}.

The sufficient statistics are then expected ones: :math:`E[x] = \hat x` (with
:math:`\hat x_o = x_o`) and :math:`E[x x^\top] = \hat x \hat x^\top + C`, :math:`C` filling
the missing block and zero elsewhere. The closed-form M-step of
:mod:`emkit.distributions.gaussian` on these statistics maximises the expected complete-data
log-likelihood over :math:`p(z, x_m \mid x_o)`: this is exact EM, and the log-likelihood of
the observed entries never decreases. The statistics also carry the entropy of the missing
block, :math:`\tfrac12 \log\det(2\pi e\, C)` per row (weighted by the responsibility), which
does not depend on the parameters: with it, Q at the E-step's parameters equals
:math:`\sum_n \sum_k \gamma_{nk} \log p(x_{n,o} \mid z_n = k)`, and the ELBO equals the
log-likelihood after an exact E-step, as for complete data.

Diagonal and spherical covariances are the simple special case: the missing entries are
independent of the observed ones, :math:`\hat x_m = \mu_m` and
:math:`C = \operatorname{diag}(\sigma_m^2)`.

How it is computed. The rows of a chunk with missing entries are grouped by their pattern
of missing entries. For a full (or tied) covariance, :math:`\Sigma_{oo}` is factorised once
per pattern and component: :math:`\tilde\Sigma`, equal to :math:`\Sigma` on
:math:`o \times o` and to the identity on the missing rows and columns, has as Cholesky
factor :math:`\tilde L` that of :math:`\Sigma_{oo}` with ones on the missing diagonal, so
every pattern has the same shape (D × D) and a chunk's patterns are factorised in one
batched call, in float64. With :math:`W = \tilde L^{-1}` and the residual :math:`r` of a row
(:math:`x_o - \mu_o` on :math:`o`, 0 on :math:`m`): :math:`w = W r` gives the Mahalanobis
term :math:`\lVert w \rVert^2`, :math:`u = W^\top w = \Sigma_{oo}^{-1} r` (zero on
:math:`m`) gives :math:`\hat x_m - \mu_m = (\Sigma u)_m`, and :math:`B = W \Sigma_{om}`
gives :math:`C = \Sigma_{mm} - B^\top B`; :math:`\log|\Sigma_{oo}| = 2 \sum_i \log
\tilde L_{ii}` and :math:`\log|C| = \log|\Sigma| - \log|\Sigma_{oo}|`.

Cost, for :math:`n_m` incomplete rows with :math:`P` patterns in a chunk: :math:`O(PKD^3)`
on the host for the factors, :math:`O(n_m K D^2)` on the data's device for the rows (one
factor gathered per row and component: :math:`n_m K D^2` numbers of memory), and
:math:`O(n_m K D)` for diagonal and spherical covariances. Rows without missing entries take
the Gaussian family's usual paths.

The same pieces serve every family whose missing block is Gaussian given the observed one
and a latent variable: the Student-t family (:mod:`emkit.distributions.student_t`) uses the
Mahalanobis terms, the factors and the conditional moments of its scale matrices, and the
splitting of a chunk into complete and incomplete rows (:func:`split_chunk`,
:meth:`PartialChunk.assemble`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from emkit._backend import Array, as_backend, device_of, namespace, to_numpy

__all__ = [
    "MissingRows",
    "PartialChunk",
    "conditional_moments",
    "conditional_sums",
    "fill_missing",
    "missing_rows",
    "normal_log_prob",
    "pattern_totals",
    "split_chunk",
]

_LOG_2PI = np.log(2.0 * np.pi)


@dataclasses.dataclass(frozen=True)
class MissingRows:
    """The rows of a chunk with missing entries, as the E-step needs them.

    Attributes
    ----------
    index : array of shape (n_m,)
        Positions of the rows in the chunk (integers on the data's device).
    mahalanobis : array of shape (n_m, K)
        :math:`(x_o - \\mu_{k,o})^\\top \\Sigma_{k,oo}^{-1} (x_o - \\mu_{k,o})`.
    completed : array of shape (K, n_m, D)
        :math:`E[x \\mid x_o, z = k] - \\mu_k`: the residuals, missing entries completed.
    means : array of shape (K, D)
        :math:`\\mu_k`, the reference point of the statistics of these rows.
    pattern : ndarray of int, shape (n_m,)
        The pattern of missing entries of each row (host memory).
    n_observed : ndarray of shape (P,)
        :math:`|o|`, the number of observed entries of each pattern (float64).
    log_det_observed : ndarray of shape (P, K)
        :math:`\\log|\\Sigma_{k,oo}|` of each pattern and component.
    covariance : ndarray
        Float64 conditional covariance :math:`C` of each pattern and component, zero outside
        the missing block: (P, K, D, D) for full and tied covariances, its diagonal
        (P, K, D) for diagonal and spherical ones.
    entropy : ndarray of shape (P, K)
        :math:`\\tfrac12 \\log\\det(2\\pi e\\, C)` of each pattern and component.
    """

    index: Array
    mahalanobis: Array
    completed: Array
    means: Array
    pattern: np.ndarray
    n_observed: np.ndarray
    log_det_observed: np.ndarray
    covariance: np.ndarray
    entropy: np.ndarray

    def per_row(self, table: np.ndarray) -> Array:
        """Host values of each pattern (P, ...) gathered for every row, (n_m, ...), on the
        data's device and in its dtype."""
        return as_backend(np.ascontiguousarray(table[self.pattern]), self.mahalanobis)


@dataclasses.dataclass(frozen=True)
class PartialChunk:
    """A chunk in which some rows have missing entries: the family's chunk of the complete
    rows (``None`` when there are none) at positions ``complete``, and the family's view of
    the incomplete rows (a :class:`MissingRows`, or an object whose ``index`` holds their
    positions)."""

    observed: Any | None
    complete: Array
    missing: Any
    n_rows: int

    def assemble(self, incomplete: Array, complete: Callable[[Any], Array]) -> Array:
        """Values (n, K) of every row of the chunk: ``incomplete`` (n_m, K) at the rows with
        missing entries, ``complete(observed)`` at the others."""
        xp = namespace(incomplete)
        values = xp.empty(
            (self.n_rows, incomplete.shape[1]), dtype=incomplete.dtype,
            device=device_of(incomplete),
        )
        values[self.missing.index, ...] = incomplete
        if self.observed is not None:
            values[self.complete, ...] = complete(self.observed)
        return values


def split_chunk(
    X: Array,
    prepared: Any | None,
    complete: Callable[[Array], Any],
    incomplete: Callable[[Array, Array], Any],
) -> PartialChunk:
    """A chunk with missing entries split into its complete rows, as ``complete(rows)``
    reduces them, and its incomplete rows, as ``incomplete(rows, index)`` does (``index``:
    their positions in the chunk).

    Raises ``ValueError`` when ``prepared`` (the E-step's coefficients) is ``None``: the
    statistics of incomplete rows are expectations under the current parameters.
    """
    if prepared is None:
        raise ValueError(
            "Statistics of rows with missing values (NaN) are expectations under the "
            "current parameters: compute them in an E-step (features with the "
            "coefficients of prepare), or start from data without missing values."
        )
    xp = namespace(X)
    incomplete_rows = to_numpy(xp.any(xp.isnan(X), axis=1))
    rows = as_backend(np.flatnonzero(incomplete_rows), X, dtype=xp.int64)
    others = np.flatnonzero(~incomplete_rows)
    complete_index = as_backend(others, X, dtype=xp.int64)
    observed = complete(xp.take(X, complete_index, axis=0)) if others.size else None
    missing = incomplete(xp.take(X, rows, axis=0), rows)
    return PartialChunk(observed, complete_index, missing, X.shape[0])


def missing_rows(
    rows: Array,
    index: Array,
    means: np.ndarray,
    covariances: np.ndarray,
    covariance_type: str,
) -> MissingRows:
    """The E-step's view of ``rows`` (each with at least one NaN), at positions ``index``.

    Parameters
    ----------
    rows : array of shape (n_m, D)
        In the data's namespace, device and dtype.
    index : array of shape (n_m,)
        Their positions in the chunk.
    means : ndarray of shape (K, D)
    covariances : ndarray
        Float64 covariances shaped as :class:`~emkit.distributions.GaussianParams`'.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    """
    xp = namespace(rows)
    n_components, n_features = means.shape
    missing = xp.isnan(rows)
    observed = xp.astype(~missing, rows.dtype)
    patterns, pattern = _patterns(to_numpy(missing))
    seen = ~patterns
    pattern_index = as_backend(pattern, rows, dtype=xp.int64)
    device_means = as_backend(means, rows)
    filled = xp.where(missing, xp.zeros_like(rows), rows)
    residuals = (filled[None, :, :] - device_means[:, None, :]) * observed[None, :, :]
    if covariance_type in ("full", "tied"):
        batch = covariances if covariance_type == "full" else covariances[None]
        factors, log_det_observed, covariance = _pattern_factors(batch, seen)
        log_det = np.linalg.slogdet(batch)[1]
        gathered = xp.take(as_backend(factors, rows), pattern_index, axis=0)
        by_row = xp.permute_dims(residuals, (1, 0, 2))[..., None]
        whitened = (gathered @ by_row)[..., 0] * observed[:, None, :]
        mahalanobis = xp.sum(whitened * whitened, axis=2)
        solved = (xp.permute_dims(gathered, (0, 1, 3, 2)) @ whitened[..., None])[..., 0]
        solved = xp.permute_dims(solved * observed[:, None, :], (1, 0, 2))
        regression = solved @ as_backend(batch, rows)
        completed = residuals + (1.0 - observed)[None, :, :] * regression
        covariance = np.broadcast_to(
            covariance, (len(patterns), n_components, n_features, n_features)
        )
    else:
        variances = covariances if covariance_type == "diag" else np.repeat(
            covariances[:, None], n_features, axis=1
        )
        precisions = as_backend(1.0 / variances, rows)
        mahalanobis = xp.permute_dims(
            xp.sum(residuals * residuals * precisions[:, None, :], axis=2), (1, 0)
        )
        log_det = np.log(variances).sum(axis=1)
        log_det_observed = seen.astype(np.float64) @ np.log(variances).T
        covariance = (~seen)[:, None, :] * variances[None, :, :]
        completed = residuals
    n_observed = seen.sum(axis=1).astype(np.float64)
    log_det_observed = np.broadcast_to(log_det_observed, (len(patterns), n_components))
    entropy = 0.5 * (
        (n_features - n_observed[:, None]) * (_LOG_2PI + 1.0) + log_det[None, :]
        - log_det_observed
    )
    return MissingRows(
        index, mahalanobis, completed, device_means, pattern, n_observed, log_det_observed,
        covariance, entropy,
    )


def normal_log_prob(missing: MissingRows, bias: np.ndarray) -> Array:
    r""":math:`\log \mathcal N(x_o \mid \mu_{k,o}, \Sigma_{k,oo}) = -\tfrac12(|o| \log 2\pi
    + \log|\Sigma_{k,oo}| + \delta_{k,o})` plus ``bias`` (K,), (n_m, K)."""
    constant = bias[None, :] - 0.5 * (
        missing.n_observed[:, None] * _LOG_2PI + missing.log_det_observed
    )
    return missing.per_row(constant) - 0.5 * missing.mahalanobis


def _patterns(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a boolean mask (P, D) and the index of each row's, (n,): rows
    are packed into bytes and compared as one integer (or one byte string) each."""
    packed = np.packbits(missing, axis=1)
    width = packed.shape[1]
    if width <= 8:
        keys = np.zeros((len(packed), 8), dtype=np.uint8)
        keys[:, :width] = packed
        keys = keys.view(np.uint64).ravel()
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, width))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return missing[first], inverse.reshape(-1)


def _pattern_factors(
    covariances: np.ndarray, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per pattern (rows of ``seen``, true where observed) and covariance (K', D, D):
    :math:`W = \tilde L^{-1}` (P, K', D, D), :math:`\log|\Sigma_{oo}|` (P, K') and the
    conditional covariance :math:`C` embedded in the missing block (P, K', D, D)."""
    n_features = covariances.shape[-1]
    observed_block = (seen[:, :, None] & seen[:, None, :])[:, None]
    hidden = ~seen
    masked = np.where(observed_block, covariances[None], np.eye(n_features))
    lower = np.linalg.cholesky(masked)
    factors = np.tril(np.linalg.inv(lower))
    log_det_observed = 2.0 * np.log(np.diagonal(lower, axis1=2, axis2=3)).sum(axis=2)
    cross = np.where((seen[:, :, None] & hidden[:, None, :])[:, None], covariances[None], 0.0)
    projected = factors @ cross
    hidden_block = (hidden[:, :, None] & hidden[:, None, :])[:, None]
    covariance = np.where(hidden_block, covariances[None], 0.0) - (
        projected.transpose(0, 1, 3, 2) @ projected
    )
    covariance = 0.5 * (covariance + covariance.transpose(0, 1, 3, 2))
    return factors, log_det_observed, covariance


def pattern_totals(missing: MissingRows, resp: Array) -> np.ndarray:
    r""":math:`\Gamma_{pk} = \sum_{n \in p} \gamma_{nk}`, the responsibility of each pattern
    (float64, host); ``resp`` holds the rows of ``missing``."""
    host = to_numpy(resp, np.float64)
    totals = np.zeros((missing.entropy.shape[0], host.shape[1]))
    np.add.at(totals, missing.pattern, host)
    return totals


def conditional_sums(missing: MissingRows, totals: np.ndarray) -> np.ndarray:
    r""":math:`\sum_p \Gamma_{pk} C_{pk}`, the conditional covariances weighted by the
    pattern totals :math:`\Gamma` of :func:`pattern_totals`: (K, D, D), or the diagonal
    (K, D) for diagonal and spherical covariances (float64, host)."""
    if missing.covariance.ndim == 4:
        return np.einsum("pk,pkde->kde", totals, missing.covariance)
    return np.einsum("pk,pkd->kd", totals, missing.covariance)


def conditional_moments(missing: MissingRows) -> tuple[Array, Array]:
    r""":math:`E[x \mid x_o, z = k]` and the conditional variances of every entry (zero
    where observed), each (K, n_m, D), on the data's device."""
    means = missing.completed + missing.means[:, None, :]
    covariance = missing.covariance
    if covariance.ndim == 4:
        covariance = np.diagonal(covariance, axis1=2, axis2=3)
    return means, namespace(means).permute_dims(missing.per_row(covariance), (1, 0, 2))


def fill_missing(
    X: Array, missing: MissingRows, resp: Array, moment: Callable[[Array, Array], Array]
) -> Array:
    r"""A copy of the chunk ``X`` with each missing entry replaced by
    :math:`\sum_k \gamma_{nk}\, \mathrm{moment}(\hat x_{nk}, v_{nk})`, from the conditional
    means :math:`\hat x` and variances :math:`v` of :func:`conditional_moments`."""
    xp = namespace(X)
    means, variances = conditional_moments(missing)
    weights = xp.permute_dims(xp.take(resp, missing.index, axis=0), (1, 0))
    values = xp.sum(weights[:, :, None] * moment(means, variances), axis=0)
    rows = xp.take(X, missing.index, axis=0)
    filled = xp.asarray(X, copy=True)
    filled[missing.index, ...] = xp.where(xp.isnan(rows), values, rows)
    return filled
