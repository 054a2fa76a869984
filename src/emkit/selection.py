r"""Choosing the number of components and the covariance type of a Gaussian mixture.

Every combination of a number of components :math:`K` and a covariance type is fitted, and
scored by an information criterion (lower is better):

.. math::

    \mathrm{BIC} = -2 \ln \hat L + p \ln N, \qquad
    \mathrm{AIC} = -2 \ln \hat L + 2 p, \qquad
    \mathrm{ICL} = \mathrm{BIC} - 2 \sum_{n=1}^{N} \sum_{k=1}^{K} \gamma_{nk} \ln \gamma_{nk},

where :math:`\hat L` is the maximised likelihood, :math:`p` the number of free parameters,
:math:`N` the number of samples and :math:`\gamma_{nk}` the responsibilities. ICL (Biernacki,
Celeux and Govaert, 2000) adds the entropy of the classification to BIC, and so prefers
well-separated clusters.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning

from emkit._backend import to_numpy
from emkit.models.gaussian_mixture import GaussianMixture

__all__ = [
    "COVARIANCE_TYPES",
    "CRITERIA",
    "GaussianMixtureSelection",
    "n_parameters",
    "select_gaussian_mixture",
]

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
CRITERIA = ("bic", "aic", "icl")
COLUMNS = (
    "n_components",
    "covariance_type",
    "bic",
    "aic",
    "icl",
    "log_likelihood",
    "n_parameters",
    "converged",
    "n_iter",
)


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free parameters of a Gaussian mixture.

    Parameters
    ----------
    n_components : int
        :math:`K`.
    n_features : int
        :math:`D`.
    covariance_type : {"full", "diag", "tied", "spherical"}
        Form of the covariance matrices.

    Returns
    -------
    int
        :math:`K - 1` weights, :math:`K D` means and the covariance parameters:
        :math:`K D (D + 1) / 2` (full), :math:`K D` (diag), :math:`D (D + 1) / 2` (tied) or
        :math:`K` (spherical).

    Examples
    --------
    >>> n_parameters(2, 2, "full")
    11
    """
    k, d = n_components, n_features
    covariance = {
        "full": k * d * (d + 1) // 2,
        "diag": k * d,
        "tied": d * (d + 1) // 2,
        "spherical": k,
    }
    if covariance_type not in covariance:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        )
    return (k - 1) + k * d + covariance[covariance_type]


class GaussianMixtureSelection:
    """The outcome of :func:`select_gaussian_mixture`.

    Attributes
    ----------
    criterion : str
        The criterion that chose the model: ``"bic"``, ``"aic"`` or ``"icl"``.
    results_ : list of dict
        One row per fitted model, in the order fitted, with keys ``n_components``,
        ``covariance_type``, ``bic``, ``aic``, ``icl``, ``log_likelihood`` (total over the
        samples), ``n_parameters``, ``converged`` and ``n_iter``.
    best_index_ : int
        Index in ``results_`` of the chosen model.
    best_params_ : dict
        ``n_components`` and ``covariance_type`` of the chosen model.
    best_estimator_ : GaussianMixture
        The chosen model, fitted on all the data.
    n_samples_ : int
        Number of samples the models were fitted on.
    """

    def __init__(
        self,
        criterion: str,
        results: list[dict[str, Any]],
        best_index: int,
        best_estimator,
        n_samples: int,
    ) -> None:
        self.criterion = criterion
        self.results_ = results
        self.best_index_ = best_index
        self.best_estimator_ = best_estimator
        self.n_samples_ = n_samples

    @property
    def best_params_(self) -> dict[str, Any]:
        row = self.results_[self.best_index_]
        return {"n_components": row["n_components"], "covariance_type": row["covariance_type"]}

    def table(self, as_frame: bool | None = None):
        """The results as a table.

        Parameters
        ----------
        as_frame : bool or None, default=None
            True: a pandas DataFrame (pandas required); False: a list of dicts; None: a
            DataFrame when pandas is installed, a list of dicts otherwise.

        Returns
        -------
        pandas.DataFrame or list of dict
            One row per fitted model (columns as in ``results_``).
        """
        rows = [dict(row) for row in self.results_]
        if as_frame is False:
            return rows
        try:
            import pandas as pd
        except ImportError:
            if as_frame:
                raise ImportError("table(as_frame=True) needs pandas: pip install pandas") from None
            return rows
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def to_text(self) -> str:
        """The table as aligned plain text, the chosen row marked with ``*``."""
        header = ["", "K", "covariance", "BIC", "AIC", "ICL", "log-lik", "params", "converged"]
        lines = [header]
        for index, row in enumerate(self.results_):
            lines.append(
                [
                    "*" if index == self.best_index_ else "",
                    str(row["n_components"]),
                    row["covariance_type"],
                    f"{row['bic']:.2f}",
                    f"{row['aic']:.2f}",
                    f"{row['icl']:.2f}",
                    f"{row['log_likelihood']:.2f}",
                    str(row["n_parameters"]),
                    "yes" if row["converged"] else "no",
                ]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        aligned = []
        for line in lines:
            cells = [
                cell.ljust(width) if i in (0, 2) else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            ]
            aligned.append("  ".join(cells).rstrip())
        return "\n".join(aligned)

    def __repr__(self) -> str:
        params = self.best_params_
        return (
            f"GaussianMixtureSelection(criterion={self.criterion!r}, "
            f"n_models={len(self.results_)}, best: n_components={params['n_components']}, "
            f"covariance_type={params['covariance_type']!r})"
        )


def _check_components(n_components, n_samples: int) -> list[int]:
    if isinstance(n_components, numbers.Integral):
        n_components = [n_components]
    values = list(n_components)
    if not values:
        raise ValueError("n_components is empty")
    for value in values:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"n_components must hold positive integers, got {value!r}")
    if max(values) > n_samples:
        raise ValueError(
            f"n_components={max(values)} is more than the number of samples ({n_samples})"
        )
    return [int(value) for value in values]


def _check_covariance_types(covariance_types) -> list[str]:
    if isinstance(covariance_types, str):
        covariance_types = [covariance_types]
    values = list(covariance_types)
    if not values:
        raise ValueError("covariance_types is empty")
    for value in values:
        if value not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_types must be among {COVARIANCE_TYPES}, got {value!r}")
    return values


def select_gaussian_mixture(
    X,
    n_components: int | Iterable[int] = range(1, 10),
    covariance_types: str | Sequence[str] = COVARIANCE_TYPES,
    criterion: str = "bic",
    random_state=None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    **fit_params,
) -> GaussianMixtureSelection:
    """Fit Gaussian mixtures over a grid and keep the best by an information criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (NumPy array, DataFrame or PyTorch tensor).
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or sequence of str, default=("full", "diag", "tied", "spherical")
        Covariance types to try.
    criterion : {"bic", "aic", "icl"}, default="bic"
        Criterion to minimise. Ties go to the model with fewer parameters.
    random_state : int, RandomState instance or None, default=None
        Passed to every :class:`~emkit.GaussianMixture`; an integer makes the whole selection
        reproducible.
    callback : callable, default=None
        Called with each row of the table as soon as its model is fitted (for progress).
    **fit_params
        Other parameters of :class:`~emkit.GaussianMixture` (``max_iter``, ``tol``,
        ``n_init``, ``reg_covar``, ``init_params``, ...), the same for every model.

    Returns
    -------
    GaussianMixtureSelection
        The table of results (``results_``, ``table()``) and ``best_estimator_``.

    Raises
    ------
    ValueError
        For an unknown criterion or covariance type, or a number of components that is not a
        positive integer or exceeds the number of samples.

    Notes
    -----
    Models that stop at ``max_iter`` before converging stay in the table with
    ``converged=False``; a single :class:`~sklearn.exceptions.ConvergenceWarning` names them.

    Examples
    --------
    >>> from emkit.datasets import load_faithful
    >>> result = select_gaussian_mixture(
    ...     load_faithful().data, n_components=range(1, 4), covariance_types=["full"],
    ...     random_state=0)
    >>> result.best_params_
    {'n_components': 2, 'covariance_type': 'full'}
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    n_samples = int(X.shape[0]) if hasattr(X, "shape") else len(X)
    components = _check_components(n_components, n_samples)
    covariance_types = _check_covariance_types(covariance_types)
    results: list[dict[str, Any]] = []
    best_key, best_index, best_estimator = None, -1, None
    for covariance_type in covariance_types:
        for k in components:
            estimator = GaussianMixture(
                n_components=k,
                covariance_type=covariance_type,
                random_state=random_state,
                **fit_params,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator.fit(X)
            row = _evaluate(estimator, X, n_samples)
            results.append(row)
            if callback is not None:
                callback(dict(row))
            key = (row[criterion], row["n_parameters"])
            if np.isfinite(row[criterion]) and (best_key is None or key < best_key):
                best_key, best_index, best_estimator = key, len(results) - 1, estimator
    if best_estimator is None:
        raise ValueError(f"no model has a finite {criterion.upper()}")
    failed = [
        f"K={row['n_components']} {row['covariance_type']}"
        for row in results
        if not row["converged"]
    ]
    if failed:
        warnings.warn(
            f"{len(failed)} model(s) did not converge within max_iter: {', '.join(failed)}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return GaussianMixtureSelection(criterion, results, best_index, best_estimator, n_samples)


def _evaluate(estimator, X, n_samples: int) -> dict[str, Any]:
    """One row of the selection table for a fitted ``estimator``."""
    means = to_numpy(estimator.means_)
    k, d = means.shape
    p = n_parameters(k, d, estimator.covariance_type)
    log_likelihood = float(estimator.score(X)) * n_samples
    resp = to_numpy(estimator.predict_proba(X), dtype=np.float64)
    entropy = -float(xlogy(resp, resp).sum())
    bic = float(estimator.bic(X))
    return {
        "n_components": int(k),
        "covariance_type": estimator.covariance_type,
        "bic": bic,
        "aic": float(estimator.aic(X)),
        "icl": bic + 2.0 * entropy,
        "log_likelihood": log_likelihood,
        "n_parameters": p,
        "converged": bool(estimator.converged_),
        "n_iter": int(estimator.n_iter_),
    }
