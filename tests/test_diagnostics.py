"""The ELBO decomposition per iteration, its picture, and the checker for new families."""

import dataclasses
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import COVARIANCE_TYPES, make_blobs, starting_values
from emkit import GaussianMixture
from emkit.diagnostics import Trace, check_family, plot_trace
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStatistics
from emkit.em import Mixture
from emkit.em.mixture import MixtureStatistics

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def traced(X, **options):
    trace = Trace()
    model = GaussianMixture(callbacks=trace, **options).fit(X)
    return model, trace


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_after_an_exact_e_step_the_elbo_is_the_log_likelihood(covariance_type):
    X, _ = make_blobs(n=500, d=3, k=3, seed=1)
    start = starting_values(X, 3, covariance_type)
    model, trace = traced(X, n_components=3, covariance_type=covariance_type, max_iter=20,
                          tol=0.0, **start)
    ll = trace.log_likelihood
    scale = np.abs(ll).max()
    assert_allclose(trace.kl_after, 0.0, atol=1e-13 * scale)
    assert_allclose(trace.elbo_after, ll, rtol=1e-13)
    assert_allclose(ll[1:], model.lower_bounds_, rtol=0)
    # Before the E-step the ELBO is below the log-likelihood, above the last one (the
    # M-step raised it from there): ell_{t-1} <= L(q_{t-1}, theta_t) <= ell_t.
    assert (trace.kl[1:] >= -1e-13 * scale).all()
    assert (trace.elbo[1:] >= ll[:-1] - 1e-13 * scale).all()
    assert_allclose(trace.elbo[1:] + trace.kl[1:], ll[1:], rtol=1e-14)


def test_tracking_the_elbo_changes_nothing_else():
    X, _ = make_blobs(n=400, d=2, k=3, seed=2)
    start = starting_values(X, 3, "full")
    plain = GaussianMixture(3, max_iter=10, tol=0.0, **start).fit(X)
    model, _ = traced(X, n_components=3, max_iter=10, tol=0.0, **start)
    assert model.lower_bounds_ == plain.lower_bounds_


def test_the_entropy_accumulates_chunk_by_chunk():
    X, _ = make_blobs(n=700, d=2, k=3, seed=3)
    start = starting_values(X, 3, "diag")
    options = dict(n_components=3, covariance_type="diag", max_iter=8, tol=0.0, **start)
    _, whole = traced(X, chunk_size=700, **options)
    _, chunked = traced(X, chunk_size=33, n_jobs=2, **options)
    assert_allclose(chunked.elbo[1:], whole.elbo[1:], rtol=1e-13)
    assert_allclose(chunked.kl[1:], whole.kl[1:], atol=1e-13)


def test_hard_and_annealed_e_steps_leave_a_gap():
    X, _ = make_blobs(n=500, d=2, k=3, seed=4, spread=1.5)
    model, hard = traced(X, n_components=3, algorithm="hard", random_state=0, max_iter=10,
                         tol=0.0)
    # One-hot q has no entropy: its ELBO is the classification log-likelihood.
    assert_allclose(hard.elbo_after[1:], model.lower_bounds_, rtol=1e-13)
    assert (hard.kl_after > 0).all()
    _, annealed = traced(X, n_components=3, algorithm="annealed", random_state=0,
                         max_iter=20, tol=0.0)
    betas = np.array([info.setting.beta for info in annealed.iterations])
    assert (annealed.kl_after[betas < 1] > 0).all()
    assert_allclose(annealed.kl_after[betas == 1], 0.0, atol=1e-12)


def test_the_trace_is_drawn():
    X, _ = make_blobs(n=300, d=2, k=2, seed=5)
    _, trace = traced(X, n_components=2, random_state=0, max_iter=5, tol=0.0)
    ax = trace.plot()
    labels = [line.get_label() for line in ax.get_legend().get_lines()]
    assert labels == ["log-likelihood", "ELBO", "KL(q ‖ p(z | x, θ))"]
    elbo_line = ax.get_lines()[1]
    assert len(elbo_line.get_xdata()) == 2 * len(trace.iterations)
    assert plot_trace(trace, ax=ax) is ax
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_q_from_statistics_is_the_expected_complete_data_log_likelihood(
    covariance_type,
):
    X, _ = make_blobs(n=200, d=3, k=2, seed=6)
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(2), size=len(X))
    family = Gaussian(covariance_type)
    stats = family.statistics(family.features(X, None), resp)
    params = family.maximize(family.statistics(family.features(X[:120], None), resp[:120]))
    from scipy.stats import multivariate_normal

    if covariance_type == "full":
        covariances = params.covariances
    elif covariance_type == "tied":
        covariances = [params.covariances] * 2
    elif covariance_type == "diag":
        covariances = [np.diag(c) for c in params.covariances]
    else:
        covariances = [c * np.eye(3) for c in params.covariances]
    direct = sum(
        resp[:, k] @ multivariate_normal(params.means[k], covariances[k]).logpdf(X)
        for k in range(2)
    )
    assert_allclose(family.expected_log_likelihood(params, stats), direct, rtol=1e-12)
    moved = stats.about(rng.normal(size=(2, 3)))
    assert_allclose(family.expected_log_likelihood(params, moved), direct, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_checker_passes_the_gaussian_family(covariance_type):
    X, _ = make_blobs(n=150, d=3, k=3, seed=7)
    report = check_family(Gaussian(covariance_type), X)
    assert report.ok, str(report)
    names = [check.name for check in report.checks if check.passed]
    assert "statistics add up" in names and "maximize maximises Q" in names
    report.raise_for_failures()


def test_the_checker_passes_the_von_mises_example():
    from custom_family import VonMises, planted_data

    X, _ = planted_data(n=400)
    report = check_family(VonMises(), X)
    assert report.ok, str(report)
    assert all(check.passed for check in report.checks)


@dataclasses.dataclass(frozen=True)
class CountsTwice(Gaussian):
    """Statistics that count every chunk's responsibilities once more: they do not add up."""

    def statistics(self, chunk, resp):
        stats = super().statistics(chunk, resp)
        return GaussianStatistics(stats.resp_sum + 1.0, stats.sum_x, stats.sum_xx, stats.shift)


@dataclasses.dataclass(frozen=True)
class ShrunkMeans(Gaussian):
    """An M-step that pulls every mean halfway to the origin: it does not maximise Q."""

    def maximize(self, stats):
        params = super().maximize(stats)
        return GaussianParams(0.5 * params.means, params.covariances, params.precisions_cholesky)


def test_the_checker_names_what_is_wrong():
    X, _ = make_blobs(n=150, d=2, k=3, seed=8)
    adding = check_family(CountsTwice("diag"), X)
    failed = {check.name for check in adding.checks if check.passed is False}
    assert "statistics add up" in failed
    maximizing = check_family(ShrunkMeans("full"), X + 5.0)
    failed = {check.name for check in maximizing.checks if check.passed is False}
    assert failed == {"maximize maximises Q"}
    with pytest.raises(AssertionError, match="FAIL  maximize maximises Q"):
        maximizing.raise_for_failures()


def test_the_checker_skips_what_a_family_does_not_offer():
    class Bare:
        gaussian = Gaussian("diag")

        def features(self, X, prepared):
            return self.gaussian.features(X, prepared)

        def statistics(self, features, resp):
            return self.gaussian.statistics(features, resp)

        def maximize(self, stats):
            return self.gaussian.maximize(stats)

    X, _ = make_blobs(n=60, d=2, k=2, seed=9)
    report = check_family(Bare(), X)
    assert report.ok
    assert report.checks[-1].passed is None
    assert "SKIP  expected_log_likelihood" in str(report)


def test_mixture_q_includes_the_weights():
    X, _ = make_blobs(n=100, d=2, k=2, seed=10)
    family = Gaussian("spherical")
    resp = np.random.default_rng(1).dirichlet(np.ones(2), size=len(X))
    components = family.statistics(family.features(X, None), resp)
    stats = MixtureStatistics(resp.sum(axis=0), components)
    mixture = Mixture(family, 2)
    params = mixture.maximize(stats)
    expected = resp.sum(axis=0) @ np.log(params.weights) + family.expected_log_likelihood(
        params.components, components)
    assert_allclose(mixture.expected_log_likelihood(params, stats), expected, rtol=1e-14)
