"""Pictures of Gaussian mixtures and of the EM algorithm.

The figures follow Bishop, *Pattern Recognition and Machine Learning* (2006), section 9.2:
every point is painted in a mixture of the component colours weighted by its
responsibilities (figure 9.5 (c)), components are drawn as ellipses at one and two standard
deviations, and :func:`plot_em_steps` shows EM from its initialisation as figure 9.8 does.
Data with more than two features are drawn on their first two principal components, with the
ellipses projected likewise.

matplotlib is needed (``pip install 'emkit[plot]'``); it is imported when a function is
called, not with this module. Every function returns the matplotlib ``Axes`` (or ``Figure``
for a grid) that it drew on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from emkit._backend import log_normalize, to_numpy

__all__ = [
    "plot_em_steps",
    "plot_log_likelihood",
    "plot_responsibilities",
    "plot_selection",
]

_GREY = (0.55, 0.55, 0.55)
_STYLES = {1: "-", 2: "--", 3: ":"}
# tab10 with red second, so that two components mix into purple as in Bishop's figures.
_TAB10_ORDER = (0, 3, 2, 1, 4, 5, 6, 7, 8, 9)


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'emkit[plot]'"
        ) from None
    return plt


def _new_axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=(5.5, 4.5), layout="constrained")
    return ax


def _component_colors(n_components: int) -> np.ndarray:
    """RGB colours, shape (n_components, 3): ``tab10`` or, beyond ten, evenly spaced hues."""
    plt = _pyplot()
    if n_components <= 10:
        cmap = plt.get_cmap("tab10")
        return np.array([cmap(k)[:3] for k in _TAB10_ORDER[:n_components]])
    cmap = plt.get_cmap("hsv")
    return np.array([cmap(k / n_components)[:3] for k in range(n_components)])


def _full_covariances(covariances, covariance_type: str, n_features: int) -> np.ndarray:
    """Covariance matrices of shape (K, D, D) from a fitted ``covariances_``.

    ``covariances_`` has shape (K, D, D) for ``"full"``, (D, D) for ``"tied"``, (K, D) for
    ``"diag"`` and (K,) for ``"spherical"``; a tied matrix is returned with K = 1.
    """
    covariances = to_numpy(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return covariances[None]
    if covariance_type == "diag":
        return covariances[:, :, None] * np.eye(n_features)
    if covariance_type == "spherical":
        return covariances[:, None, None] * np.eye(n_features)
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def _model_covariances(model) -> np.ndarray:
    """Covariance matrices of shape (K, D, D) of a fitted mixture."""
    means = to_numpy(model.means_, dtype=np.float64)
    covariance_type = getattr(model, "covariance_type", "full")
    full = _full_covariances(model.covariances_, covariance_type, means.shape[1])
    return np.broadcast_to(full, (means.shape[0], *full.shape[1:]))


class _Plane:
    """The two dimensions drawn: the features themselves, or two principal components."""

    def __init__(self, X: np.ndarray, feature_names=None) -> None:
        n_features = X.shape[1]
        if n_features < 2:
            raise ValueError(f"these pictures need at least 2 features, the data have {n_features}")
        self.pca = PCA(n_components=2).fit(X) if n_features > 2 else None
        if self.pca is None:
            names = list(feature_names) if feature_names is not None else ["x0", "x1"]
            self.labels = [str(name) for name in names]
        else:
            ratio = self.pca.explained_variance_ratio_
            self.labels = [f"PC {i + 1} ({100 * ratio[i]:.0f}% of variance)" for i in range(2)]

    def points(self, X: np.ndarray) -> np.ndarray:
        return X if self.pca is None else self.pca.transform(X)

    def covariances(self, covariances: np.ndarray) -> np.ndarray:
        if self.pca is None:
            return covariances
        W = self.pca.components_
        return W @ covariances @ W.T

    def decorate(self, ax) -> None:
        ax.set_xlabel(self.labels[0])
        ax.set_ylabel(self.labels[1])


def _as_matrix(X) -> np.ndarray:
    X = to_numpy(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {X.shape}")
    return X


def _draw_components(ax, means, covariances, colors, n_std: Iterable[float]) -> None:
    from matplotlib.patches import Ellipse

    for mean, covariance, color in zip(means, covariances, colors, strict=True):
        values, vectors = np.linalg.eigh(covariance)
        values = np.clip(values, 0.0, None)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for i, n in enumerate(n_std):
            ax.add_patch(
                Ellipse(
                    xy=mean,
                    width=2 * n * np.sqrt(values[-1]),
                    height=2 * n * np.sqrt(values[0]),
                    angle=angle,
                    facecolor="none",
                    edgecolor=color,
                    linewidth=2.0 if i == 0 else 1.2,
                    linestyle=_STYLES.get(i + 1, ":"),
                    zorder=3,
                )
            )
        ax.plot(*mean, marker="x", color=color, markersize=8, markeredgewidth=2, zorder=4)


def _scatter(ax, points, colors, size) -> None:
    ax.scatter(points[:, 0], points[:, 1], c=colors, s=size, linewidths=0, zorder=2)


def _mix(resp: np.ndarray, colors: np.ndarray) -> np.ndarray:
    return np.clip(resp @ colors, 0.0, 1.0)


def _frame(ax, points) -> None:
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.08 * np.where(high > low, high - low, 1.0)
    ax.set_xlim(low[0] - margin[0], high[0] + margin[0])
    ax.set_ylim(low[1] - margin[1], high[1] + margin[1])


def plot_responsibilities(
    model,
    X,
    ax=None,
    *,
    n_std: Sequence[float] = (1, 2),
    point_size: float = 14.0,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
):
    r"""Scatter ``X`` coloured by responsibilities, with the components as ellipses.

    Each point gets the mixture :math:`\sum_k \gamma_{nk} c_k` of the component colours
    :math:`c_k` weighted by its responsibilities, as in Bishop's figures 9.5 (c) and 9.8;
    each component is drawn as ellipses at ``n_std`` standard deviations around its mean.

    Parameters
    ----------
    model : fitted GaussianMixture
        Any fitted Gaussian mixture with ``means_``, ``covariances_``, ``covariance_type``
        and ``predict_proba`` (every covariance type is drawn).
    X : array-like of shape (n_samples, n_features)
        Data to draw, with at least two features. With more than two, points, means and
        covariances are projected on the first two principal components of ``X``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    n_std : sequence of float, default=(1, 2)
        Ellipses drawn at these numbers of standard deviations.
    point_size : float, default=14.0
        Marker area of the points.
    feature_names : sequence of str, default=None
        Axis labels for two features; by default the model's ``feature_names_in_``, if any.
    title : str, default=None
        Title of the axes; by default the number of components and the covariance type.

    Returns
    -------
    matplotlib.axes.Axes
    """
    resp = to_numpy(model.predict_proba(X), dtype=np.float64)
    X = _as_matrix(X)
    ax = _new_axes(ax)
    if feature_names is None:
        feature_names = getattr(model, "feature_names_in_", None)
    plane = _Plane(X, feature_names)
    colors = _component_colors(resp.shape[1])
    points = plane.points(X)
    _scatter(ax, points, _mix(resp, colors), point_size)
    means = plane.points(to_numpy(model.means_, dtype=np.float64))
    _draw_components(ax, means, plane.covariances(_model_covariances(model)), colors, n_std)
    _frame(ax, points)
    plane.decorate(ax)
    if title is None:
        covariance_type = getattr(model, "covariance_type", "full")
        title = f"{resp.shape[1]} components, {covariance_type} covariance"
    ax.set_title(title)
    return ax


def _initial_parameters(
    X: np.ndarray, n_components: int, covariance_type: str, means_init, random_state
) -> dict[str, np.ndarray]:
    """Uniform weights, means drawn among the points, every covariance the data's."""
    n_samples, n_features = X.shape
    if means_init is None:
        rng = check_random_state(random_state)
        means = X[rng.choice(n_samples, size=n_components, replace=False)].copy()
    else:
        means = np.array(means_init, dtype=np.float64)
        if means.shape != (n_components, n_features):
            raise ValueError(
                f"means_init must have shape ({n_components}, {n_features}), got {means.shape}"
            )
    covariance = np.atleast_2d(np.cov(X, rowvar=False)) + 1e-6 * np.eye(n_features)
    precision = np.linalg.inv(covariance)
    precisions = {
        "full": np.broadcast_to(precision, (n_components, n_features, n_features)).copy(),
        "tied": precision,
        "diag": np.tile(1.0 / np.diag(covariance), (n_components, 1)),
        "spherical": np.full(n_components, 1.0 / np.mean(np.diag(covariance))),
    }
    if covariance_type not in precisions:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": means,
        "precisions_init": precisions[covariance_type],
    }


def _responsibilities(X, weights, means, covariances) -> np.ndarray:
    """Posterior probabilities of the components for every row of ``X``."""
    log_joint = np.column_stack(
        [
            np.log(w) + multivariate_normal(mean=m, cov=c, allow_singular=True).logpdf(X)
            for w, m, c in zip(weights, means, covariances, strict=True)
        ]
    )
    resp, _ = log_normalize(log_joint)
    return resp


def plot_em_steps(
    X,
    n_components: int = 2,
    iterations: Sequence[int] = (0, 1, 2, 5, 20),
    *,
    covariance_type: str = "full",
    means_init=None,
    random_state=None,
    show_first_e_step: bool = True,
    ncols: int = 3,
    panel_size: float = 3.2,
    **params: Any,
):
    """EM from its initialisation, as a grid of panels like Bishop's figure 9.8.

    The first panel shows the data and the initial components (uniform weights, means drawn
    among the points unless ``means_init`` is given, every covariance equal to the data
    covariance); the next, the responsibilities of the first E-step; then one panel per
    entry ``L`` of ``iterations`` shows the components after ``L`` EM iterations (M-step
    and E-step), with the points coloured by their responsibilities under them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, with at least two features (projected on two principal components beyond).
    n_components : int, default=2
        Number of components.
    iterations : sequence of int, default=(0, 1, 2, 5, 20)
        EM iterations after which to draw a panel; ``0`` is the initialisation.
    covariance_type : {"full", "diag", "tied", "spherical"}, default="full"
        Covariance type of the mixture.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means; drawn among the points when None.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of the initial means.
    show_first_e_step : bool, default=True
        Draw the responsibilities of the first E-step in a panel of their own, after the
        initialisation (when ``0`` is in ``iterations``).
    ncols : int, default=3
        Panels per row.
    panel_size : float, default=3.2
        Width and height of a panel in inches.
    **params
        Other parameters of :class:`~emkit.GaussianMixture` (such as ``reg_covar``).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The panels come from a single fit of :class:`~emkit.GaussianMixture` with ``tol=0``,
    whose ``callbacks`` record the parameters after the iterations drawn.
    """
    from emkit.models.gaussian_mixture import GaussianMixture

    X = _as_matrix(X)
    steps = sorted({int(L) for L in iterations})
    if not steps or steps[0] < 0:
        raise ValueError(f"iterations must be non-negative integers, got {iterations!r}")
    plane = _Plane(X)
    snapshots: dict[int, dict[str, np.ndarray]] = {}

    def record(info) -> None:
        if info.iteration in steps:
            snapshots[info.iteration] = {
                name: to_numpy(value, dtype=np.float64).copy()
                for name, value in info.params.items()
            }

    model = GaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        max_iter=steps[-1],
        tol=0.0,
        callbacks=[record],
        **_initial_parameters(X, n_components, covariance_type, means_init, random_state),
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)

    panels: list[tuple[str, bool, dict[str, np.ndarray]]] = []
    for L in steps:
        if L not in snapshots:
            continue
        if L == 0:
            panels.append(("Initialisation", False, snapshots[0]))
            if show_first_e_step:
                panels.append(("E-step", True, snapshots[0]))
        else:
            panels.append((f"L = {L}", True, snapshots[L]))

    plt = _pyplot()
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size * ncols, panel_size * nrows),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    colors = _component_colors(n_components)
    points = plane.points(X)
    for ax, (title, coloured, snapshot) in zip(axes.flat, panels, strict=False):
        means = snapshot["means_"]
        covariances = np.broadcast_to(
            _full_covariances(snapshot["covariances_"], covariance_type, X.shape[1]),
            (n_components, X.shape[1], X.shape[1]),
        )
        if coloured:
            resp = _responsibilities(X, snapshot["weights_"], means, covariances)
            point_colors = _mix(resp, colors)
        else:
            point_colors = [_GREY]
        _scatter(ax, points, point_colors, 8.0)
        _draw_components(
            ax, plane.points(means), plane.covariances(covariances), colors, n_std=(1, 2)
        )
        _frame(ax, points)
        ax.set_title(title)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(plane.labels[0])
    for ax in axes[:, 0]:
        ax.set_ylabel(plane.labels[1])
    fig.suptitle(f"EM for a mixture of {n_components} Gaussians ({covariance_type} covariance)")
    return fig


def plot_log_likelihood(model, ax=None):
    """The mean log-likelihood per sample after each EM iteration (``lower_bounds_``).

    Parameters
    ----------
    model : fitted estimator
        An estimator with ``lower_bounds_`` (one value per iteration of its best
        initialisation).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the model has no ``lower_bounds_`` (not fitted).
    """
    bounds = getattr(model, "lower_bounds_", None)
    if bounds is None:
        raise ValueError("the model has no lower_bounds_: fit it first")
    bounds = np.array([float(to_numpy(b)) for b in bounds])
    ax = _new_axes(ax)
    iterations = np.arange(1, bounds.size + 1)
    ax.plot(iterations, bounds, marker="o", markersize=3)
    converged = getattr(model, "converged_", None)
    status = {True: ", converged", False: ", not converged"}.get(converged, "")
    ax.set_title(f"Log-likelihood per sample ({bounds.size} iterations{status})")
    ax.set_xlabel("EM iteration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("mean log-likelihood")
    ax.grid(True, alpha=0.3)
    return ax


def plot_selection(result, ax=None, *, criteria: Sequence[str] = ("bic", "aic")):
    """Information criteria against the number of components, one line per covariance type.

    Parameters
    ----------
    result : GaussianMixtureSelection or list of dict
        What :func:`emkit.selection.select_gaussian_mixture` returned, or its table.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    criteria : sequence of {"bic", "aic", "icl"}, default=("bic", "aic")
        Criteria drawn: the first with solid lines, the others dashed and dotted. The chosen
        model is circled.

    Returns
    -------
    matplotlib.axes.Axes
    """
    rows = result.results_ if hasattr(result, "results_") else list(result)
    if not rows:
        raise ValueError("the selection result is empty")
    for criterion in criteria:
        if criterion not in rows[0]:
            raise ValueError(f"unknown criterion {criterion!r}")
    ax = _new_axes(ax)
    covariance_types = list(dict.fromkeys(row["covariance_type"] for row in rows))
    colors = _component_colors(len(covariance_types))
    for color, covariance_type in zip(colors, covariance_types, strict=True):
        subset = sorted(
            (row for row in rows if row["covariance_type"] == covariance_type),
            key=lambda row: row["n_components"],
        )
        ks = [row["n_components"] for row in subset]
        for i, criterion in enumerate(criteria):
            ax.plot(
                ks,
                [row[criterion] for row in subset],
                linestyle=_STYLES.get(i + 1, ":"),
                marker="o" if i == 0 else None,
                markersize=4,
                color=color,
                label=f"{criterion.upper()}, {covariance_type}",
            )
    if hasattr(result, "best_index_"):
        best = rows[result.best_index_]
        chosen = getattr(result, "criterion", criteria[0])
        ax.plot(
            best["n_components"],
            best[chosen],
            marker="o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor="black",
            linestyle="none",
            label=f"chosen by {chosen.upper()}",
        )
    ax.set_xlabel("number of components")
    ax.set_ylabel("criterion (lower is better)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Model selection")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax
