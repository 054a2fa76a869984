"""Dask arrays: one task per block, statistics summed in block order on the client."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from conftest import make_blobs, starting_values
from emkit import BernoulliMixture, GaussianMixture, MixtureModel, VariationalGaussianMixture
from emkit.distributions.gaussian import Gaussian
from emkit.em import Mixture
from emkit.executors import InMemory
from emkit.executors.dask import DaskData, is_dask_array
from emkit.models import _mixture

da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _params(X, k=3, covariance_type="full"):
    start = starting_values(X, k, covariance_type)
    estimator = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, **start)
    return estimator.fit(X)._fitted_params(None)


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_an_e_step_over_blocks_is_the_e_step_over_chunks_of_the_same_rows(scheduler):
    X, _ = make_blobs(n=3_000, d=3, k=3, seed=1)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=3_000)
    model, params = Mixture(Gaussian("full"), 3), _params(X)
    origin = X.mean(axis=0)
    on_dask = DaskData(da.from_array(X, chunks=(400, 2)), weights, origin=origin,
                       scheduler=scheduler).expectation(model, params)
    in_memory = InMemory(X, weights, origin=origin, chunk_size=400, n_jobs=1).expectation(
        model, params)
    assert on_dask.log_likelihood == in_memory.log_likelihood
    assert on_dask.total_weight == in_memory.total_weight
    assert_allclose(on_dask.stats.components.sum_xx, in_memory.stats.components.sum_xx,
                    rtol=0, atol=0)


def test_mean_chunks_and_worst_rows_match_memory():
    X, _ = make_blobs(n=1_000, d=2, k=2, seed=2)
    weights = np.random.default_rng(1).uniform(0.0, 3.0, size=1_000)
    dask_X = da.from_array(X, chunks=(300, 2))
    on_dask = DaskData(dask_X, da.from_array(weights, chunks=100), origin=X[0])
    in_memory = InMemory(X, weights, origin=X[0], chunk_size=300)
    assert_allclose(on_dask.mean(), in_memory.mean(), rtol=1e-13)
    assert_allclose(DaskData(dask_X).mean(), X.mean(axis=0), rtol=1e-13)
    for (start, rows, w), (start2, rows2, w2) in zip(on_dask.chunks(), in_memory.chunks(),
                                                     strict=True):
        assert start == start2
        assert_allclose(rows, rows2, rtol=0, atol=0)
        assert_allclose(w, w2, rtol=0, atol=0)
    model, params = Mixture(Gaussian("full"), 2), _params(X, 2)
    assert_allclose(on_dask.worst_rows(model, params, 5), in_memory.worst_rows(model, params, 5))


def test_arrays_are_recognised_and_bad_arrays_refused():
    X = np.zeros((10, 2))
    assert is_dask_array(da.from_array(X)) and not is_dask_array(X)
    unknown = da.from_array(X, chunks=5)
    unknown = unknown[unknown[:, 0] == 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        DaskData(unknown)
    with pytest.raises(ValueError, match="2D"):
        DaskData(da.zeros(4))


# ---------------------------------------------------------------------- estimators
def _estimators():
    rng = np.random.default_rng(5)
    X, _ = make_blobs(n=2_400, d=3, k=3, seed=5)
    labels = rng.integers(0, 2, 2_400)
    counts = rng.poisson(np.array([2.0, 9.0])[labels][:, None], size=(2_400, 2))
    binary = (rng.random((2_400, 6)) < np.array([0.2, 0.8])[labels][:, None]).astype(float)
    return {
        "gaussian": (X, GaussianMixture(3, random_state=0, chunk_size=400)),
        "variational": (X, VariationalGaussianMixture(n_components=4, random_state=0,
                                                      chunk_size=400)),
        "bernoulli": (binary, BernoulliMixture(2, random_state=0, chunk_size=400)),
        "poisson-and-gaussian": (
            np.hstack([counts, X[:, :2]]),
            MixtureModel(families={"poisson": [0, 1], "gaussian": [2, 3]}, n_components=2,
                         random_state=0, chunk_size=400),
        ),
    }


@pytest.mark.parametrize("name", ["gaussian", "variational", "bernoulli",
                                  "poisson-and-gaussian"])
def test_fit_on_a_dask_array_is_the_fit_in_memory(name):
    X, estimator = _estimators()[name]
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=X.shape[0])
    in_memory = clone(estimator).fit(X, sample_weight=weights)
    dask_X = da.from_array(X, chunks=(400, -1))
    on_dask = clone(estimator).fit(dask_X, sample_weight=da.from_array(weights, chunks=400))
    assert on_dask.n_iter_ == in_memory.n_iter_
    assert_allclose(on_dask.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
    assert_allclose(on_dask.weights_, in_memory.weights_, rtol=1e-10)
    proba = on_dask.predict_proba(dask_X)
    assert is_dask_array(proba) and proba.shape == (X.shape[0], estimator.n_components)
    assert_allclose(proba.compute(), in_memory.predict_proba(X), rtol=1e-10, atol=1e-14)
    assert_array_equal(on_dask.predict(dask_X).compute(), in_memory.predict(X))
    assert_allclose(on_dask.score_samples(dask_X).compute(), in_memory.score_samples(X),
                    rtol=1e-12)
    assert on_dask.score(dask_X) == pytest.approx(in_memory.score(X), rel=1e-12)
    assert on_dask.bic(dask_X) == pytest.approx(in_memory.bic(X), rel=1e-12)


def test_missing_values_are_marginalised_and_imputed_on_blocks():
    X, _ = make_blobs(n=1_200, d=3, k=2, seed=6)
    X[np.random.default_rng(2).random(X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    in_memory = GaussianMixture(2, random_state=0, chunk_size=300).fit(X)
    dask_X = da.from_array(X, chunks=(300, 3))
    on_dask = GaussianMixture(2, random_state=0, chunk_size=300).fit(dask_X)
    assert_allclose(on_dask.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
    assert_allclose(on_dask.impute(dask_X).compute(), in_memory.impute(X), rtol=1e-12)


def test_a_large_array_starts_from_a_sample_and_reaches_the_same_optimum(monkeypatch):
    monkeypatch.setattr(_mixture, "INIT_SAMPLE_ROWS", 500)
    X, _ = make_blobs(n=6_000, d=2, k=3, seed=7, spread=10.0)
    in_memory = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    on_dask = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(
        da.from_array(X, chunks=1_000))
    assert on_dask.converged_
    assert on_dask.lower_bound_ == pytest.approx(in_memory.lower_bound_, abs=1e-7)


@pytest.mark.parametrize("update", ["batch", "incremental"])
def test_fit_chunks_runs_its_passes_on_the_blocks(update):
    X, _ = make_blobs(n=2_000, d=2, k=2, seed=8)
    start = starting_values(X, 2, "diag")
    options = dict(covariance_type="diag", tol=0.0, chunk_size=500, **start)
    on_dask = GaussianMixture(2, **options).fit_chunks(da.from_array(X, chunks=500),
                                                       n_passes=6, update=update)
    streamed = GaussianMixture(2, **options).fit_chunks(X, n_passes=6, update=update)
    # The stream's frame is its first chunk's mean, the Dask array's its sample's (here
    # every row): the same iterates, in frames that differ by rounding.
    assert_allclose(on_dask.lower_bounds_, streamed.lower_bounds_, rtol=1e-10)
    assert_allclose(on_dask.means_, streamed.means_, rtol=1e-9)


def test_bad_blocks_are_refused_before_fitting_naming_the_rows(monkeypatch):
    X, _ = make_blobs(n=1_000, d=2, k=2, seed=9)
    X[734, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 734, column 1"):
        GaussianMixture(2).fit(da.from_array(X, chunks=200))
    # Outside the starting sample, the block that holds the row is named.
    monkeypatch.setattr(_mixture, "INIT_SAMPLE_ROWS", 50)
    sampled = np.random.RandomState(0).choice(1_000, size=50, replace=False)
    assert 734 not in sampled
    with pytest.raises(ValueError, match=r"rows 600 to 799 .*inf at row 134, column 1"):
        GaussianMixture(2, random_state=0).fit(da.from_array(X, chunks=200))
    X[734, 1] = 0.5
    binary = (X > 0).astype(float)
    binary[420, 0] = 2.0
    assert 420 not in sampled
    with pytest.raises(ValueError, match=r"rows 400 to 599"):
        BernoulliMixture(2, random_state=0).fit(da.from_array(binary, chunks=200))
    weights = np.ones(1_000)
    weights[512] = -1.0
    assert 512 not in sampled
    with pytest.raises(ValueError, match=r"row 512 is -1\.0"):
        GaussianMixture(2, random_state=0).fit(da.from_array(X, chunks=200),
                                               sample_weight=weights)
    with pytest.raises(ValueError, match=r"shape \(1000,\)"):
        GaussianMixture(2).fit(da.from_array(X, chunks=200), sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="semi-supervised"):
        MixtureModel(2, families="gaussian", semi_supervised=True).fit(
            da.from_array(X, chunks=200), np.zeros(1_000))


def test_a_distributed_cluster_of_processes_fits_the_same_model():
    distributed = pytest.importorskip("distributed")
    X, _ = make_blobs(n=2_000, d=3, k=3, seed=10)
    start = starting_values(X, 3, "full")
    in_memory = GaussianMixture(3, max_iter=5, tol=0.0, chunk_size=500, **start).fit(X)
    with distributed.Client(n_workers=2, threads_per_worker=1, processes=True,
                            dashboard_address=None):
        on_dask = GaussianMixture(3, max_iter=5, tol=0.0, **start).fit(
            da.from_array(X, chunks=500))
    assert_allclose(on_dask.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
