"""The engine underneath the estimators: statistics, normalisation, the loop, memory."""

import dataclasses
import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from conftest import make_blobs, starting_values
from emkit import GaussianMixture
from emkit._backend import log_normalize
from emkit.distributions.gaussian import Gaussian, GaussianStatistics
from emkit.em import MonotonicityError, run_em
from emkit.em.loop import MonotonicityWarning
from emkit.executors.memory import PassResult

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_log_normalize_matches_logsumexp_without_overflow():
    rng = np.random.default_rng(0)
    a = rng.normal(scale=500.0, size=(50, 7))
    a[3] = -np.inf
    a[4, 2] = 1e300
    expected = logsumexp(a, axis=1)
    resp, log_norm = log_normalize(a.copy())
    assert_allclose(log_norm[np.isfinite(expected)], expected[np.isfinite(expected)])
    assert log_norm[3] == -np.inf
    assert_allclose(resp[np.arange(50) != 3].sum(axis=1), 1.0)
    assert np.isfinite(resp).all()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_statistics_add_up_across_chunks_and_references(covariance_type):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    resp = rng.dirichlet(np.ones(2), size=40)
    family = Gaussian(covariance_type)
    whole = family.statistics(family.features(X, None), resp)
    halves = [family.statistics(family.features(X[s], None), resp[s]) for s in (
        slice(0, 17), slice(17, 40))]
    summed = halves[0] + halves[1]
    for field in ("resp_sum", "sum_x", "sum_xx"):
        assert_allclose(getattr(summed, field), getattr(whole, field), rtol=1e-12)
    # The same sums about another point per component, then added to sums about zero.
    moved = halves[1].about(rng.normal(size=(2, 3)))
    mixed = halves[0] + moved
    for field in ("resp_sum", "sum_x", "sum_xx"):
        assert_allclose(getattr(mixed, field), getattr(whole, field), rtol=1e-10, atol=1e-12)
    scaled = 0.25 * whole
    assert_allclose(scaled.sum_xx, 0.25 * whole.sum_xx)
    assert (scaled.shift == whole.shift).all()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_both_e_step_paths_agree(covariance_type, monkeypatch):
    X, _ = make_blobs(n=300, d=3, k=3, seed=3)
    start = starting_values(X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, max_iter=10, tol=0.0, **start)
    expanded = GaussianMixture(3, **options).fit(X)
    monkeypatch.setattr(
        "emkit.distributions.gaussian.EXPANDED_MAX_ERROR", {"float64": -1.0, "float32": -1.0}
    )
    residual = GaussianMixture(3, **options).fit(X)
    assert_allclose(residual.lower_bounds_, expanded.lower_bounds_, rtol=1e-12)
    assert_allclose(residual.covariances_, expanded.covariances_, rtol=1e-9)
    assert_allclose(residual.predict_proba(X), expanded.predict_proba(X), atol=1e-12)


def test_tight_clusters_far_apart_keep_their_digits():
    """Components thousands of standard deviations from the data's centre: the exact path
    keeps the covariances that scikit-learn's two-pass sums give."""
    from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    labels = rng.integers(0, 3, 900)
    X = centres[labels] + 1e-3 * rng.normal(size=(900, 2))
    start = starting_values(X, 3, "full")
    options = dict(max_iter=10, tol=0.0, reg_covar=0.0, **start)
    ours = GaussianMixture(3, **options).fit(X)
    theirs = SKLearnGaussianMixture(3, **options).fit(X)
    assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-8)
    assert_allclose(ours.lower_bounds_[:-1], theirs.lower_bounds_[1:], rtol=1e-12)


@dataclasses.dataclass
class _DecreasingModel:
    """A model whose 'M-step' lowers the log-likelihood at the third iteration."""

    def maximize(self, stats):
        return stats + 1

    def empty_components(self, stats):
        return np.empty(0, dtype=int)

    def regularization_gap(self, params, stats):
        return 0.0

    def objective(self, params, result):
        return result.log_likelihood


class _ScriptedData:
    def __init__(self, bounds):
        self.bounds = bounds

    def expectation(self, model, params):
        return PassResult(params, self.bounds[params], 1.0)


@pytest.mark.parametrize("mode", ["warn", "raise", "ignore"])
def test_a_decrease_is_reported_with_iteration_and_size(mode):
    data = _ScriptedData([-3.0, -2.0, -1.0, -1.5, -1.4])
    options = dict(max_iter=4, tol=0.0, monotonic=mode)
    if mode == "raise":
        with pytest.raises(MonotonicityError, match=r"iteration 3, from -1.0 to -1.5 \(by 0.5"):
            run_em(_DecreasingModel(), data, 0, **options)
    elif mode == "warn":
        with pytest.warns(MonotonicityWarning, match="iteration 3"):
            result = run_em(_DecreasingModel(), data, 0, **options)
        assert result.lower_bounds == [-2.0, -1.0, -1.5, -1.4]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_em(_DecreasingModel(), data, 0, **options)


def test_a_numerical_breakdown_is_an_error():
    data = _ScriptedData([-3.0, np.nan])
    with pytest.raises(FloatingPointError, match="iteration 1"):
        run_em(_DecreasingModel(), data, 0, max_iter=3, tol=0.0)


def test_memory_beyond_the_data_does_not_grow_with_n():
    """Peak memory of a fit is bounded by the chunk, not by n × K × D (nor n × K)."""
    peaks = []
    for n in (100_000, 300_000):
        X, _ = make_blobs(n=n, d=4, k=3, seed=5)
        start = starting_values(X[:2000], 3, "full")
        model = GaussianMixture(3, max_iter=3, tol=0.0, chunk_size=1000, **start)
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    n_by_k_bytes = 300_000 * 3 * 8
    assert peaks[1] < 1.5 * peaks[0] + 100_000
    assert peaks[1] < n_by_k_bytes / 4


def test_sample_weight_statistics_equal_repeated_rows():
    X, _ = make_blobs(n=50, d=2, k=2, seed=6)
    weights = np.arange(50) % 3
    family = Gaussian("full")
    resp = np.random.default_rng(0).dirichlet(np.ones(2), size=50)
    weighted = family.statistics(family.features(X, None), resp * weights[:, None])
    repeated = family.statistics(
        family.features(np.repeat(X, weights, axis=0), None), np.repeat(resp, weights, axis=0)
    )
    assert isinstance(weighted, GaussianStatistics)
    assert_allclose(weighted.sum_xx, repeated.sum_xx, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_threads_do_not_change_results(covariance_type):
    X, _ = make_blobs(n=3000, d=3, k=3, seed=7)
    start = starting_values(X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, max_iter=10, tol=0.0, chunk_size=128)
    one = GaussianMixture(3, n_jobs=1, **options, **start).fit(X)
    three = GaussianMixture(3, n_jobs=3, **options, **start).fit(X)
    assert_allclose(three.lower_bounds_, one.lower_bounds_, rtol=1e-14)
    assert_allclose(three.covariances_, one.covariances_, rtol=1e-13)
    assert_allclose(three.predict_proba(X), one.predict_proba(X), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_only_ill_conditioned_components_take_the_residual_path(covariance_type, monkeypatch):
    """A tight component far from the data's centre takes the exact residual path while the
    others stay on the expanded one; the fit equals the all-residual fit."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    means = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 40.0]])
    X = np.vstack([
        rng.normal(size=(300, 2)) + means[0],
        rng.normal(size=(300, 2)) + means[1],
        1e-3 * rng.normal(size=(100, 2)) + means[2],
    ])
    options = dict(
        covariance_type=covariance_type, max_iter=5, tol=0.0, means_init=means, random_state=0
    )
    family = Gaussian(covariance_type)
    mixed = GaussianMixture(3, **options).fit(X)
    params = mixed._fitted_params(X.mean(axis=0))
    prepared = family.prepare(params.components, X)
    if covariance_type != "tied":
        assert prepared.expanded is not None and prepared.residual is not None
    on_torch = GaussianMixture(3, **options).fit(torch.from_numpy(X))
    monkeypatch.setattr(
        "emkit.distributions.gaussian.EXPANDED_MAX_ERROR", {"float64": -1.0, "float32": -1.0}
    )
    exact = GaussianMixture(3, **options).fit(X)
    # A component that tightens by orders of magnitude within one iteration (here from the
    # k-means covariance to 1e-3) was on the expanded path for that iteration's statistics:
    # its first covariance carries that path's rounding (about 1e-7 here), which the next
    # iterations, on the residual path, remove.
    assert_allclose(mixed.lower_bounds_[0], exact.lower_bounds_[0], rtol=1e-7)
    assert_allclose(mixed.lower_bounds_[1:], exact.lower_bounds_[1:], rtol=1e-12)
    assert_allclose(mixed.covariances_, exact.covariances_, rtol=1e-9)
    assert_allclose(on_torch.lower_bounds_[0], mixed.lower_bounds_[0], rtol=1e-7)
    assert_allclose(on_torch.lower_bounds_[1:], mixed.lower_bounds_[1:], rtol=1e-12)
