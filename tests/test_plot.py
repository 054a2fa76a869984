"""Pictures: every function draws something, for every covariance type and dimension."""

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from emkit import GaussianMixture
from emkit.datasets import load_faithful
from emkit.plot import (
    plot_em_steps,
    plot_log_likelihood,
    plot_responsibilities,
    plot_selection,
)
from emkit.selection import select_gaussian_mixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def faithful():
    X = load_faithful().data
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)


def assert_not_blank(fig):
    pixels = _pixels(fig)
    assert pixels.var() > 100.0
    coloured = np.ptp(pixels, axis=-1) > 60
    assert coloured.mean() > 0.002


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_responsibilities(faithful, covariance_type):
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(faithful)
    ax = plot_responsibilities(model, faithful)
    assert isinstance(ax, Axes)
    ellipses = [patch for patch in ax.patches if isinstance(patch, Ellipse)]
    assert len(ellipses) == 2 * 2
    assert len(ax.collections) == 1
    colors = ax.collections[0].get_facecolors()
    assert colors.shape == (faithful.shape[0], 4)
    assert_not_blank(ax.figure)


def test_ellipse_axes_follow_the_covariance(faithful):
    model = GaussianMixture(1, random_state=0).fit(faithful)
    ax = plot_responsibilities(model, faithful, n_std=(1,))
    (ellipse,) = ax.patches
    values = np.linalg.eigvalsh(model.covariances_[0])
    assert ellipse.width == pytest.approx(2 * np.sqrt(values[-1]))
    assert ellipse.height == pytest.approx(2 * np.sqrt(values[0]))


def test_colours_mix_by_responsibility(faithful):
    model = GaussianMixture(2, random_state=0).fit(faithful)
    ax = plot_responsibilities(model, faithful)
    resp = model.predict_proba(faithful)
    colors = ax.collections[0].get_facecolors()[:, :3]
    certain = resp.max(axis=1) > 0.999
    assert len(np.unique(colors[certain].round(3), axis=0)) == 2
    uncertain = np.argmin(np.abs(resp[:, 0] - 0.5))
    assert not any(np.allclose(colors[uncertain], c, atol=0.05) for c in colors[certain])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_more_than_two_features_are_projected(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 4)), rng.normal(5, 1, (60, 4))])
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    ax = plot_responsibilities(model, X)
    assert ax.get_xlabel().startswith("PC 1")
    assert len(ax.patches) == 4
    assert_not_blank(ax.figure)


def test_feature_names_label_the_axes():
    pd = pytest.importorskip("pandas")
    frame = load_faithful(as_frame=True).frame
    model = GaussianMixture(2, random_state=0).fit(frame)
    ax = plot_responsibilities(model, frame)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruptions", "waiting")
    assert isinstance(frame, pd.DataFrame)


def test_draws_on_given_axes(faithful):
    _, (left, right) = plt.subplots(1, 2)
    model = GaussianMixture(2, random_state=0).fit(faithful)
    assert plot_responsibilities(model, faithful, ax=right, title="right") is right
    assert right.get_title() == "right" and not left.patches


def test_one_feature_is_refused():
    X = np.random.default_rng(0).normal(size=(50, 1))
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="at least 2 features"):
        plot_responsibilities(model, X)


def test_em_steps_like_bishop(faithful):
    fig = plot_em_steps(faithful, 2, random_state=0)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["Initialisation", "E-step", "L = 1", "L = 2", "L = 5", "L = 20"]
    for ax in fig.axes:
        assert len(ax.patches) == 4
    assert_not_blank(fig)


def test_em_steps_start_from_the_given_means(faithful):
    means = np.array([[-1.5, 1.0], [1.5, -1.0]])
    fig = plot_em_steps(faithful, 2, iterations=(0, 3), means_init=means, ncols=2)
    first = fig.axes[0]
    centres = [patch.center for patch in first.patches[::2]]
    np.testing.assert_allclose(centres, means)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["Initialisation", "E-step", "L = 3"]


def test_em_steps_panels_match_a_plain_fit(faithful):
    means = np.array([[-1.5, 1.0], [1.5, -1.0]])
    fig = plot_em_steps(faithful, 2, iterations=(4,), means_init=means, covariance_type="diag")
    (ax,) = fig.axes
    reference = GaussianMixture(
        2,
        covariance_type="diag",
        max_iter=4,
        tol=0.0,
        weights_init=[0.5, 0.5],
        means_init=means,
        precisions_init=np.tile(1 / np.var(faithful, axis=0, ddof=1), (2, 1)),
    )
    with pytest.warns(Warning):
        reference.fit(faithful)
    centres = np.array([patch.center for patch in ax.patches[::2]])
    np.testing.assert_allclose(centres, reference.means_, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_steps_every_covariance_type_and_dimension(covariance_type):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (50, 3)), rng.normal(4, 1, (50, 3))])
    fig = plot_em_steps(
        X,
        2,
        iterations=(0, 2),
        covariance_type=covariance_type,
        random_state=0,
        show_first_e_step=False,
    )
    assert [ax.get_title() for ax in fig.axes] == ["Initialisation", "L = 2"]
    assert_not_blank(fig)


def test_em_steps_bad_iterations(faithful):
    with pytest.raises(ValueError, match="non-negative"):
        plot_em_steps(faithful, 2, iterations=(-1, 2))


def test_log_likelihood(faithful):
    model = GaussianMixture(2, init_params="random_from_data", random_state=1).fit(faithful)
    ax = plot_log_likelihood(model)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), model.lower_bounds_)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, model.n_iter_ + 1))
    assert "converged" in ax.get_title()
    assert_not_blank(ax.figure)


def test_log_likelihood_needs_a_fitted_model():
    with pytest.raises(ValueError, match="fit it first"):
        plot_log_likelihood(GaussianMixture(2))


def test_selection(faithful):
    result = select_gaussian_mixture(
        faithful, n_components=range(1, 4), covariance_types=["full", "diag"], random_state=0
    )
    ax = plot_selection(result)
    labels = ax.get_legend_handles_labels()[1]
    assert "BIC, full" in labels and "AIC, diag" in labels and "chosen by BIC" in labels
    assert_not_blank(ax.figure)
    ax = plot_selection(result.table(as_frame=False), criteria=("icl",))
    assert ax.get_legend_handles_labels()[1] == ["ICL, full", "ICL, diag"]


def test_selection_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plot_selection([])
    with pytest.raises(ValueError, match="unknown criterion"):
        plot_selection(
            [{"n_components": 1, "covariance_type": "full", "bic": 1.0}], criteria=("xic",)
        )


def test_clear_error_without_matplotlib(faithful, monkeypatch):
    model = GaussianMixture(2, random_state=0).fit(faithful)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'emkit\[plot\]'"):
        plot_responsibilities(model, faithful)
