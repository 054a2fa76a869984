"""Tests of BayesianLinearRegression: EM for Bayesian linear regression."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import ARDRegression, BayesianRidge
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import BayesianLinearRegression
from emkit.models import bayesian_linear_regression as blr

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bayesian_polynomial_regression.py"
# Tight enough that EM stops at its fixed point in floating point (the change of the log
# evidence is computed from the differences of the precisions, not of two evidences).
TIGHT = {"tol": 1e-25, "max_iter": 5000}
NO_HYPERPRIOR = {"alpha_1": 0.0, "alpha_2": 0.0, "lambda_1": 0.0, "lambda_2": 0.0}


def _design(X, y, fit_intercept=True, sample_weight=None):
    """The centred, weighted design matrix and targets, as the estimator sees them."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    if fit_intercept:
        X = X - np.average(X, axis=0, weights=w)
        y = y - np.average(y, weights=w)
    return X * np.sqrt(w)[:, None], y * np.sqrt(w)


def _dense_posterior(Phi, t, alpha, beta):
    """Bishop (3.53)-(3.54) and (3.86) by dense linear algebra: m_N, S_N, ln p(t)."""
    A = np.diag(np.broadcast_to(alpha, Phi.shape[1]).astype(float))
    S = np.linalg.inv(A + beta * Phi.T @ Phi)
    m = beta * S @ Phi.T @ t
    cov_t = np.eye(len(t)) / beta + Phi @ np.linalg.inv(A) @ Phi.T
    log_evidence = multivariate_normal(mean=np.zeros(len(t)), cov=cov_t).logpdf(t)
    return m, S, log_evidence


def _stationarity(estimator, Phi, t):
    """Residuals of the EM fixed-point equations at the fitted precisions (zero there)."""
    m, S = estimator.coef_, estimator.sigma_
    if estimator.ard:
        alpha_residual = estimator.alpha_ * (m**2 + np.diag(S)) - 1.0
    else:
        alpha_residual = estimator.alpha_ * (m @ m + np.trace(S)) / Phi.shape[1] - 1.0
    noise = (np.sum((t - Phi @ m) ** 2) + np.trace(Phi.T @ Phi @ S)) / len(t)
    return np.abs(alpha_residual), abs(estimator.beta_ * noise - 1.0)


def _low_rank_problem(seed=0, n=20, d=50):
    """Fewer samples than features, with correlated features so that the noise level is
    identifiable (the evidence has an interior maximum)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + 0.1 * rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) / 5 + 0.5 * rng.normal(size=n)
    return X, y


def _relevant_features_problem(seed=2, n=200, d=6):
    """Every feature matters, so that the ARD evidence has an interior maximum."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))
    w = rng.uniform(0.5, 2.0, size=d) * rng.choice([-1.0, 1.0], size=d)
    y = X @ w + 1.0 + 0.7 * rng.normal(size=n)
    return X, y


def _sparse_wide_problem(seed=1, n=20, d=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:3] = [3.0, -2.0, 1.5]
    return X, X @ w + 0.3 * rng.normal(size=n)


# --- parity with scikit-learn ------------------------------------------------------------


def test_parity_with_bayesian_ridge_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    ours = BayesianLinearRegression(**TIGHT).fit(X, y)
    ref = BayesianRidge(
        **NO_HYPERPRIOR, tol=1e-14, max_iter=10_000, compute_score=True
    ).fit(X, y)
    assert ours.converged_
    assert ref.n_iter_ < 10_000
    # Bishop's alpha (weight precision) is BayesianRidge's lambda_, beta is its alpha_.
    assert_allclose(ours.alpha_, ref.lambda_, rtol=1e-6)
    assert_allclose(ours.beta_, ref.alpha_, rtol=1e-6)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6)
    assert_allclose(ours.sigma_, ref.sigma_, rtol=1e-6)
    # Both include every constant of Bishop (3.86), -N/2 ln(2 pi) included.
    assert_allclose(ours.scores_[-1], ref.scores_[-1], rtol=1e-6)


def test_parity_with_bayesian_ridge_fewer_samples_than_features():
    X, y = _low_rank_problem()
    ours = BayesianLinearRegression(**TIGHT).fit(X, y)
    ref = BayesianRidge(
        **NO_HYPERPRIOR, tol=1e-14, max_iter=10_000, compute_score=True
    ).fit(X, y)
    assert ours.converged_
    assert ref.n_iter_ < 10_000
    assert_allclose(ours.alpha_, ref.lambda_, rtol=1e-6)
    assert_allclose(ours.beta_, ref.alpha_, rtol=1e-6)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6)
    assert_allclose(ours.scores_[-1], ref.scores_[-1], rtol=1e-6)
    alpha_residual, beta_residual = _stationarity(ours, *_design(X, y))
    assert alpha_residual < 1e-9
    assert beta_residual < 1e-9


def test_ard_fixed_point_and_parity_with_ard_regression():
    X, y = _relevant_features_problem()
    ours = BayesianLinearRegression(ard=True, **TIGHT).fit(X, y)
    assert ours.converged_
    alpha_residual, beta_residual = _stationarity(ours, *_design(X, y))
    assert np.max(alpha_residual) < 1e-9
    assert beta_residual < 1e-9
    # Without pruning (huge threshold) and without hyperpriors, ARDRegression's MacKay
    # updates reach the same point. Its scores_ leave out the -N/2 ln(2 pi) constant.
    ref = ARDRegression(
        **NO_HYPERPRIOR,
        threshold_lambda=1e300,
        tol=1e-15,
        max_iter=10_000,
        compute_score=True,
    ).fit(X, y)
    assert ref.n_iter_ < 10_000
    assert_allclose(ours.alpha_, ref.lambda_, rtol=1e-6)
    assert_allclose(ours.beta_, ref.alpha_, rtol=1e-6)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6)
    assert_allclose(ours.sigma_, ref.sigma_, rtol=1e-6)
    n = X.shape[0]
    assert_allclose(ours.scores_[-1], ref.scores_[-1] - 0.5 * n * np.log(2 * np.pi), rtol=1e-6)


def test_ard_fewer_samples_than_features_reaches_stationary_point():
    X, y = _sparse_wide_problem()
    ours = BayesianLinearRegression(ard=True, max_iter=2000).fit(X, y)
    assert ours.converged_
    Phi, t = _design(X, y)
    alpha_residual, beta_residual = _stationarity(ours, Phi, t)
    # The weights that stay in the model converge linearly; the precisions of the pruned
    # ones grow without bound and approach their fixed point slowly.
    assert_array_equal(np.sort(np.argsort(ours.alpha_)[:3]), [0, 1, 2])
    kept = ours.alpha_ < 100.0
    assert np.max(alpha_residual[kept]) < 1e-4
    assert np.max(alpha_residual) < 1e-2
    assert beta_residual < 1e-4
    assert_allclose(ours.coef_[:3], [3.0, -2.0, 1.5], atol=0.3)


# --- the E-step and the evidence against dense formulas ---------------------------------


@pytest.mark.parametrize("ard", [False, True])
@pytest.mark.parametrize("shape", [(40, 5), (8, 12)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_posterior_and_evidence_match_dense_formulas(ard, shape, fit_intercept):
    rng = np.random.default_rng(3)
    X = rng.normal(size=shape)
    y = X @ rng.normal(size=shape[1]) + 2.0 + 0.3 * rng.normal(size=shape[0])
    # A few iterations: with fewer samples than features the evidence may grow without
    # bound as the noise vanishes, which would make the dense formulas singular.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BayesianLinearRegression(ard=ard, fit_intercept=fit_intercept, max_iter=10)
        est.fit(X, y)
    Phi, t = _design(X, y, fit_intercept)
    m, S, log_evidence = _dense_posterior(Phi, t, est.alpha_, est.beta_)
    assert_allclose(est.coef_, m, rtol=1e-7, atol=1e-10)
    assert_allclose(est.sigma_, S, rtol=1e-7, atol=1e-12)
    assert_allclose(est.scores_[-1], log_evidence, rtol=1e-9)
    assert est.scores_.shape == (est.n_iter_ + 1,)


@pytest.mark.parametrize("ard", [False, True])
@pytest.mark.parametrize("shape", [(60, 4), (10, 25)])
def test_precise_evidence_change_equals_difference_of_evidences(ard, shape):
    rng = np.random.default_rng(4)
    X = rng.normal(size=shape)
    y = X[:, :2] @ [1.0, -2.0] + 0.5 * rng.normal(size=shape[0])
    est = BayesianLinearRegression(ard=ard)
    problem = est._prepare(X, y, None)
    design = problem.design
    alpha = np.ones(shape[1]) if ard else 1.0
    posterior = est._e_step(design, alpha, problem.beta_init)
    for _ in range(15):
        alpha, beta = est._m_step(design, posterior, problem.beta_max)
        new = est._e_step(design, alpha, beta)
        change, _ = blr._evidence_change(design, posterior, new)
        difference = new.log_evidence - posterior.log_evidence
        assert change >= 0.0
        assert_allclose(change, difference, rtol=1e-6, atol=1e-10 * abs(new.log_evidence))
        posterior = new


# --- monotone evidence ------------------------------------------------------------------


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 6),
    ard=st.booleans(),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    collinear=st.booleans(),
    x_scale=st.sampled_from([1e-6, 1.0, 1e6]),
    y_scale=st.sampled_from([1e-9, 1.0, 1e9]),
    noise=st.sampled_from([0.0, 1e-8, 1e-3, 0.3, 2.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_log_evidence_never_decreases(
    n, d, ard, fit_intercept, weighted, collinear, x_scale, y_scale, noise, seed
):
    rng = np.random.default_rng(seed)
    X = x_scale * rng.normal(size=(n, d))
    if collinear and d > 1:
        X[:, -1] = 2.0 * X[:, 0]
    y = y_scale * (X @ rng.normal(size=d) / x_scale + noise * rng.normal(size=n))
    sample_weight = rng.choice([0.0, 0.5, 1.0, 3.0], size=n) if weighted else None
    if sample_weight is not None:
        sample_weight[0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        est = BayesianLinearRegression(ard=ard, fit_intercept=fit_intercept, max_iter=60)
        est.fit(X, y, sample_weight=sample_weight)
    scores = est.scores_
    assert np.all(np.isfinite(scores))
    assert np.all(np.diff(scores) >= -1e-9 * (1.0 + np.abs(scores[1:])))


def test_decrease_of_evidence_is_reported(monkeypatch):
    X, y = _relevant_features_problem(n=60)
    fitted = BayesianLinearRegression(**TIGHT).fit(X, y)
    original = BayesianLinearRegression._m_step
    calls = []

    def m_step_gone_wrong(self, design, posterior, beta_max):
        alpha, beta = original(self, design, posterior, beta_max)
        calls.append(None)
        return (alpha * 100.0, beta) if len(calls) == 2 else (alpha, beta)

    monkeypatch.setattr(BayesianLinearRegression, "_m_step", m_step_gone_wrong)
    start = BayesianLinearRegression(
        alpha_init=fitted.alpha_, beta_init=fitted.beta_, tol=0.0, max_iter=3
    )
    with pytest.warns(RuntimeWarning, match=r"decreased at iteration 2 by \d"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start.fit(X, y)


# --- predictions ------------------------------------------------------------------------


@pytest.mark.parametrize("ard", [False, True])
def test_predict_std_matches_direct_formula(ard):
    X, y = _relevant_features_problem(n=80)
    est = BayesianLinearRegression(ard=ard).fit(X, y)
    X_new = np.random.default_rng(5).normal(size=(7, X.shape[1]))
    mean, std = est.predict(X_new, return_std=True)
    phi = X_new - X.mean(axis=0)
    expected_var = 1.0 / est.beta_ + np.array([p @ est.sigma_ @ p for p in phi])
    assert_allclose(std, np.sqrt(expected_var), rtol=1e-10)
    assert_allclose(mean, X_new @ est.coef_ + est.intercept_, rtol=1e-12)
    assert_allclose(est.predict(X_new), mean)
    assert_allclose(est.intercept_, y.mean() - X.mean(axis=0) @ est.coef_)


def test_fits_a_noisy_line():
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=(200, 1))
    y = 3.0 * x[:, 0] - 1.0 + 0.2 * rng.normal(size=200)
    est = BayesianLinearRegression().fit(x, y)
    assert_allclose(est.coef_, [3.0], atol=0.1)
    assert_allclose(est.intercept_, -1.0, atol=0.1)
    assert_allclose(1.0 / np.sqrt(est.beta_), 0.2, rtol=0.15)
    assert est.score(x, y) > 0.9


@pytest.mark.parametrize("ard", [False, True])
@pytest.mark.parametrize("shape", [(40, 4), (8, 12)])
def test_fit_does_not_depend_on_units(ard, shape):
    rng = np.random.default_rng(12)
    X = rng.normal(size=shape)
    y = X[:, :2] @ [1.0, -1.0] + 0.3 * rng.normal(size=shape[0])
    c, d = 1e4, 1e-5
    params = {"ard": ard, "max_iter": 50}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = BayesianLinearRegression(**params).fit(X, y)
        scaled = BayesianLinearRegression(**params).fit(c * X, d * y)
    assert scaled.n_iter_ == unit.n_iter_
    assert_allclose(scaled.coef_, unit.coef_ * d / c, rtol=1e-6, atol=1e-12 * d / c)
    assert_allclose(scaled.alpha_, unit.alpha_ * c**2 / d**2, rtol=1e-6)
    assert_allclose(scaled.beta_, unit.beta_ / d**2, rtol=1e-6)
    # The density of d t is that of t divided by d in each of the N dimensions.
    assert_allclose(scaled.scores_, unit.scores_ - shape[0] * np.log(d), rtol=1e-8)


# --- sample weights and the intercept ---------------------------------------------------


@pytest.mark.parametrize("ard", [False, True])
@pytest.mark.parametrize("shape", [(30, 4), (8, 12)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_integer_sample_weight_equals_repeated_rows(ard, shape, fit_intercept):
    rng = np.random.default_rng(7)
    X = rng.normal(size=shape)
    y = X @ rng.normal(size=shape[1]) + 0.5 * rng.normal(size=shape[0])
    weights = rng.integers(0, 4, size=shape[0])
    weights[0] = 2
    params = {"ard": ard, "fit_intercept": fit_intercept, "tol": 0.0, "max_iter": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = BayesianLinearRegression(**params).fit(X, y, sample_weight=weights)
        repeated = BayesianLinearRegression(**params).fit(
            np.repeat(X, weights, axis=0), np.repeat(y, weights)
        )
    assert_allclose(weighted.scores_, repeated.scores_, rtol=1e-8)
    assert_allclose(weighted.alpha_, repeated.alpha_, rtol=1e-7)
    assert_allclose(weighted.beta_, repeated.beta_, rtol=1e-7)
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7, atol=1e-10)
    assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-7, atol=1e-10)
    assert_allclose(weighted.sigma_, repeated.sigma_, rtol=1e-6, atol=1e-12)


def test_intercept_is_fitted_by_centring():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(50, 3)) + 5.0
    y = X @ [1.0, 2.0, -1.0] + 10.0 + 0.1 * rng.normal(size=50)
    weights = rng.uniform(0.5, 2.0, size=50)
    with_intercept = BayesianLinearRegression().fit(X, y, sample_weight=weights)
    x_mean = np.average(X, axis=0, weights=weights)
    y_mean = np.average(y, weights=weights)
    centred = BayesianLinearRegression(fit_intercept=False).fit(
        X - x_mean, y - y_mean, sample_weight=weights
    )
    assert_allclose(with_intercept.coef_, centred.coef_, rtol=1e-10)
    assert_allclose(with_intercept.alpha_, centred.alpha_, rtol=1e-10)
    assert_allclose(with_intercept.beta_, centred.beta_, rtol=1e-10)
    assert_allclose(with_intercept.scores_, centred.scores_, rtol=1e-10)
    assert_allclose(with_intercept.X_offset_, x_mean)
    assert_allclose(with_intercept.intercept_, y_mean - x_mean @ with_intercept.coef_)
    assert_allclose(with_intercept.intercept_, 10.0, atol=1.0)


def test_without_intercept_the_fit_goes_through_the_origin():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, -1.0] + 10.0
    est = BayesianLinearRegression(fit_intercept=False).fit(X, y)
    assert est.intercept_ == 0.0
    assert_array_equal(est.X_offset_, 0.0)
    assert_array_equal(est.predict(np.zeros((2, 2))), 0.0)
    _, std = est.predict(np.zeros((1, 2)), return_std=True)
    assert_allclose(std, 1.0 / np.sqrt(est.beta_))


# --- input validation -------------------------------------------------------------------


@pytest.fixture
def data():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(12, 3))
    return X, X @ [1.0, 0.0, -1.0] + 0.1 * rng.normal(size=12)


def test_nan_in_X_names_row_and_column(data):
    X, y = data
    X = X.copy()
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at row 4, column 2"):
        BayesianLinearRegression().fit(X, y)


def test_non_numeric_X_names_the_cell(data):
    X, y = data
    X = X.astype(object)
    X[3, 1] = "abc"
    with pytest.raises(ValueError, match=r"row 3, column 1"):
        BayesianLinearRegression().fit(X, y)


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_y_names_the_row(data, bad, kind):
    X, y = data
    y = y.copy()
    y[7] = bad
    with pytest.raises(ValueError, match=rf"y contains {kind} at row 7"):
        BayesianLinearRegression().fit(X, y)


def test_y_of_wrong_shape_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="y should be a 1d array"):
        BayesianLinearRegression().fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        BayesianLinearRegression().fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        BayesianLinearRegression().fit(X, None)


def test_column_y_is_accepted_with_a_warning(data):
    X, y = data
    with pytest.warns(DataConversionWarning):
        est = BayesianLinearRegression().fit(X, y[:, None])
    assert_allclose(est.coef_, BayesianLinearRegression().fit(X, y).coef_)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"alpha_init": -1.0}, "alpha_init"),
        ({"alpha_init": 0.0}, "alpha_init"),
        ({"beta_init": -2.0}, "beta_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1e-3}, "tol"),
        ({"ard": "yes"}, "ard"),
    ],
)
def test_invalid_parameters_are_refused(data, params, name):
    X, y = data
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        BayesianLinearRegression(**params).fit(X, y)


def test_invalid_sample_weight_is_refused(data):
    X, y = data
    weights = np.ones(len(y))
    weights[5] = -1.0
    with pytest.raises(ValueError, match="non-negative; row 5"):
        BayesianLinearRegression().fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        BayesianLinearRegression().fit(X, y, sample_weight=weights[:-1])


def test_predict_checks_the_number_of_features(data):
    X, y = data
    est = BayesianLinearRegression().fit(X, y)
    with pytest.raises(ValueError, match="expecting 3 features"):
        est.predict(X[:, :2])


# --- dtypes, copies, convergence and printing --------------------------------------------


def test_float32_input():
    X, y = _relevant_features_problem(n=100)
    est64 = BayesianLinearRegression().fit(X, y)
    est32 = BayesianLinearRegression().fit(X.astype(np.float32), y.astype(np.float32))
    assert est32.coef_.dtype == np.float64
    assert est32.sigma_.dtype == np.float64
    assert_allclose(est32.coef_, est64.coef_, rtol=1e-4)
    assert_allclose(est32.beta_, est64.beta_, rtol=1e-4)
    mean, std = est32.predict(X.astype(np.float32), return_std=True)
    assert mean.dtype == np.float32
    assert std.dtype == np.float32
    assert est32.predict(X).dtype == np.float64
    assert_allclose(mean, est64.predict(X), rtol=1e-4, atol=1e-4)


def test_torch_tensors_are_accepted(data):
    torch = pytest.importorskip("torch")
    X, y = data
    reference = BayesianLinearRegression().fit(X, y)
    est = BayesianLinearRegression().fit(torch.from_numpy(X), torch.from_numpy(y))
    assert_allclose(est.coef_, reference.coef_, rtol=1e-12)
    mean, std = est.predict(torch.from_numpy(X[:3]), return_std=True)
    expected_mean, expected_std = reference.predict(X[:3], return_std=True)
    assert isinstance(mean, np.ndarray)
    assert_allclose(mean, expected_mean, rtol=1e-12)
    assert_allclose(std, expected_std, rtol=1e-12)


def test_copy_X(data):
    X, y = data
    original = X.copy()
    reference = BayesianLinearRegression().fit(X, y)
    assert_array_equal(X, original)
    in_place = BayesianLinearRegression(copy_X=False).fit(X, y)
    assert_allclose(in_place.coef_, reference.coef_, rtol=1e-12)
    assert_allclose(in_place.intercept_, reference.intercept_, rtol=1e-12)


def test_non_convergence_warns(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        est = BayesianLinearRegression(max_iter=2, tol=0.0).fit(X, y)
    assert not est.converged_
    assert est.n_iter_ == 2
    assert est.scores_.shape == (3,)


def test_constant_target_and_single_sample():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 3))
    est = BayesianLinearRegression().fit(X, np.full(30, 2.5))
    assert_allclose(est.coef_, 0.0, atol=1e-12)
    assert_allclose(est.predict(X[:4]), 2.5)
    single = BayesianLinearRegression().fit(X[:1], [4.0])
    assert_allclose(single.predict(X[:4]), 4.0)


def test_verbose_output(data, capsys):
    X, y = data
    BayesianLinearRegression(verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1: log evidence" in out
    assert "Converged after" in out


def test_dataframe_feature_names(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = BayesianLinearRegression().fit(frame, y)
    assert_array_equal(est.feature_names_in_, ["a", "b", "c"])
    assert_allclose(est.predict(frame), BayesianLinearRegression().fit(X, y).predict(X))


# --- scikit-learn's estimator checks ----------------------------------------------------


def _run_array_api_check_with_scipy_array_api(estimator, check):
    """scipy reads SCIPY_ARRAY_API when it is first imported, so run this check in a fresh
    interpreter with it set."""
    program = (
        "import json, sys\n"
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from emkit import BayesianLinearRegression\n"
        "params, keywords = json.loads(sys.argv[1])\n"
        "check_array_api_input('BayesianLinearRegression', "
        "BayesianLinearRegression(**params), **keywords)\n"
    )
    payload = json.dumps([estimator.get_params(), check.keywords])
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    result = subprocess.run(
        [sys.executable, "-c", program, payload],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


@parametrize_with_checks([BayesianLinearRegression(), BayesianLinearRegression(ard=True)])
def test_scikit_learn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if name == "check_array_api_input" and os.environ.get("SCIPY_ARRAY_API") != "1":
            _run_array_api_check_with_scipy_array_api(estimator, check)
        else:
            check(estimator)


# --- the example ------------------------------------------------------------------------


def test_example_writes_its_figure_and_does_not_overwrite(tmp_path):
    main = runpy.run_path(str(EXAMPLE))["main"]
    target = tmp_path / "figure.png"
    assert main([str(target)]) == 0
    assert target.stat().st_size > 0
    first = target.read_bytes()
    with pytest.raises(SystemExit):
        main([str(target)])
    assert target.read_bytes() == first
    assert main([str(target), "--overwrite"]) == 0
