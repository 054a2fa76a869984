"""Dask arrays: one task per block, statistics summed in block order on the client."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import make_blobs, starting_values
from emkit import GaussianMixture
from emkit.distributions.gaussian import Gaussian
from emkit.em import Mixture
from emkit.executors import InMemory
from emkit.executors.dask import DaskData, is_dask_array

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
