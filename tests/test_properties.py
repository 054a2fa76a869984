"""Property tests of the invariants in DESIGN.md, on random data and random starts."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from conftest import COVARIANCE_TYPES, make_blobs, starting_values
from emkit import GaussianMixture
from emkit.em.loop import MonotonicityWarning

problems = st.fixed_dictionaries(
    {
        "n": st.integers(30, 300),
        "d": st.integers(1, 4),
        "k": st.integers(1, 4),
        "seed": st.integers(0, 2**16),
        "spread": st.floats(0.5, 8.0),
        "covariance_type": st.sampled_from(COVARIANCE_TYPES),
    }
)

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def fit(problem, X, **options):
    model = GaussianMixture(
        problem["k"], covariance_type=problem["covariance_type"], tol=0.0, max_iter=15,
        reg_covar=1e-6, **options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def data(problem):
    X, _ = make_blobs(
        n=problem["n"], d=problem["d"], k=problem["k"], seed=problem["seed"],
        spread=problem["spread"],
    )
    return X


@SETTINGS
@given(problems)
def test_exact_em_never_lowers_the_log_likelihood(problem):
    X = data(problem)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        model = fit(problem, X, init_params="random", random_state=problem["seed"])
    bounds = np.array(model.lower_bounds_)
    assert (np.diff(bounds) >= -1e-9 * np.abs(bounds[1:])).all()


@SETTINGS
@given(problems)
def test_responsibilities_are_a_distribution(problem):
    X = data(problem)
    model = fit(problem, X, random_state=problem["seed"])
    proba = model.predict_proba(X)
    assert (proba >= 0).all()
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


@SETTINGS
@given(problems, st.integers(1, 97))
def test_results_do_not_depend_on_chunk_size(problem, chunk_size):
    X = data(problem)
    start = starting_values(X, problem["k"], problem["covariance_type"], problem["seed"])
    whole = fit(problem, X, chunk_size=len(X), **start)
    chunked = fit(problem, X, chunk_size=chunk_size, **start)
    assert_allclose(chunked.lower_bounds_, whole.lower_bounds_, rtol=1e-10)
    assert_allclose(chunked.means_, whole.means_, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(problems)
def test_results_do_not_depend_on_row_order(problem):
    X = data(problem)
    start = starting_values(X, problem["k"], problem["covariance_type"], problem["seed"])
    order = np.random.default_rng(problem["seed"]).permutation(len(X))
    straight = fit(problem, X, chunk_size=16, **start)
    shuffled = fit(problem, X[order], chunk_size=16, **start)
    assert_allclose(shuffled.lower_bounds_, straight.lower_bounds_, rtol=1e-10)
    assert_allclose(shuffled.covariances_, straight.covariances_, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(problems)
def test_numpy_and_torch_agree(problem):
    torch = pytest.importorskip("torch")
    X = data(problem)
    start = starting_values(X, problem["k"], problem["covariance_type"], problem["seed"])
    on_numpy = fit(problem, X, chunk_size=50, **start)
    on_torch = fit(problem, torch.from_numpy(X), chunk_size=50, **start)
    assert_allclose(on_torch.lower_bounds_, on_numpy.lower_bounds_, rtol=1e-10)
    assert_allclose(on_torch.means_.numpy(), on_numpy.means_, rtol=1e-8, atol=1e-10)
    assert_allclose(
        on_torch.predict_proba(torch.from_numpy(X)).numpy(), on_numpy.predict_proba(X),
        atol=1e-9,
    )
