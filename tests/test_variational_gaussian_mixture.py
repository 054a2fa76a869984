"""VariationalGaussianMixture: parity with scikit-learn, the VBEM guarantees, the prior."""

import itertools
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import gammaln, multigammaln
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import COVARIANCE_TYPES, make_blobs
from emkit import VariationalGaussianMixture
from emkit.distributions.gaussian import Gaussian
from emkit.em.loop import MonotonicityError
from emkit.em.variational import VariationalMixture, VariationalPrior
from emkit.executors.memory import InMemory

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
POSTERIOR = (
    "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
    "weight_concentration_", "mean_precision_", "degrees_of_freedom_",
)
PRIOR = (
    "weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
    "degrees_of_freedom_prior_", "covariance_prior_",
)


def quietly(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def random_resp(n, k, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(k, 0.7), size=n)


def sklearn_fit(X, resp, **options):
    """scikit-learn's BayesianGaussianMixture started from the responsibilities ``resp``."""

    def from_resp(self, X, random_state, xp=None):
        self._initialize(X, resp)

    model = BayesianGaussianMixture(**options)
    with mock.patch.object(BayesianGaussianMixture, "_initialize_parameters", from_resp):
        return quietly(model.fit, X)


def as_array(value):
    return np.stack(value) if isinstance(value, tuple) else np.asarray(value, dtype=float)


def explicit_prior(covariance_type, n_features, seed=0):
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n_features, n_features))
    matrix = factor @ factor.T + n_features * np.eye(n_features)
    covariance = {
        "full": matrix, "tied": matrix, "diag": np.diag(matrix), "spherical": 1.7,
    }[covariance_type]
    return dict(
        weight_concentration_prior=0.3, mean_precision_prior=0.5,
        mean_prior=rng.normal(size=n_features) + 20.0,
        degrees_of_freedom_prior=n_features + 1.5, covariance_prior=covariance,
    )


# ---------------------------------------------------------------------- parity
@pytest.mark.parametrize("prior", ["default", "explicit"])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_iterates_equal_scikit_learn(covariance_type, prior_type, prior):
    X, _ = make_blobs(n=400, d=3, k=3, seed=1)
    X = X + 20.0  # away from the origin: the engine's frame and the prior's mean must agree
    resp = random_resp(len(X), 4)
    options = dict(
        n_components=4, covariance_type=covariance_type, tol=0.0,
        weight_concentration_prior_type=prior_type,
        **(explicit_prior(covariance_type, 3) if prior == "explicit" else {}),
    )
    for max_iter in (1, 2, 5, 25):
        theirs = sklearn_fit(X, resp, max_iter=max_iter, **options)
        ours = quietly(
            VariationalGaussianMixture(resp_init=resp, chunk_size=64, max_iter=max_iter,
                                       monotonic="raise", **options).fit, X,
        )
        assert ours.n_iter_ == theirs.n_iter_ == max_iter
        for name in POSTERIOR + PRIOR:
            expected = as_array(getattr(theirs, name))
            scale = np.abs(expected).max()
            assert_allclose(
                as_array(getattr(ours, name)), expected, rtol=1e-8, atol=1e-12 * scale,
                err_msg=f"{name} after {max_iter} iterations",
            )
        assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)
        assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)


def prior_of(fitted, prior_type) -> VariationalPrior:
    """The prior of a fitted estimator (emkit's or scikit-learn's), in the data's frame."""
    return VariationalPrior(
        prior_type, fitted.weight_concentration_prior_, fitted.mean_precision_prior_,
        np.asarray(fitted.mean_prior_), float(fitted.degrees_of_freedom_prior_),
        np.asarray(fitted.covariance_prior_),
    )


def dropped_constants(prior: VariationalPrior, kind, n_samples, n_components, n_features):
    r"""What scikit-learn's lower bound leaves out: -(N D / 2) log 2π and the prior's
    normalisers, K [D/2 log β0 + log B(W0, ν0) + D(D-1)/4 log π] and log C(α0) or K log γ0."""
    D, K = n_features, n_components
    cov = np.asarray(prior.covariance)
    log_det_cov = {
        "full": lambda: np.linalg.slogdet(cov)[1], "tied": lambda: np.linalg.slogdet(cov)[1],
        "diag": lambda: np.log(cov).sum(), "spherical": lambda: D * np.log(cov),
    }[kind]()
    nu0 = prior.degrees_of_freedom
    log_wishart_norm = (
        0.5 * nu0 * log_det_cov - 0.5 * nu0 * D * np.log(2.0) - multigammaln(0.5 * nu0, D)
    )
    gamma0 = prior.weight_concentration
    weights = (
        K * np.log(gamma0) if prior.weight_concentration_prior_type == "dirichlet_process"
        else gammaln(K * gamma0) - K * gammaln(gamma0)
    )
    return (
        -0.5 * n_samples * D * np.log(2 * np.pi)
        + K * (0.5 * D * np.log(prior.mean_precision) + log_wishart_norm
               + 0.25 * D * (D - 1) * np.log(np.pi))
        + weights
    )


def trace_of_mean_precisions(factors, kind, n_components, n_features):
    """tr E[Λ_k] = ‖U_k‖²_F from the precision Cholesky factors U_k, (K,)."""
    if kind == "tied":
        return np.full(n_components, (factors**2).sum())
    if kind == "spherical":
        return n_features * factors**2
    return (factors**2).reshape(n_components, -1).sum(axis=1)


@pytest.mark.parametrize("reg_covar", [0.0, 1e-3])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_equals_scikit_learn_lower_bound_plus_its_constants(
    covariance_type, prior_type, reg_covar
):
    r"""scikit-learn's ``lower_bounds_[t]`` is the ELBO of (q_t(Z), q_{t+1}(θ)): its E-step
    at q_t(θ), then its M-step. With ``expected_log_likelihood`` and the entropy of q_t(Z)
    the engine gives that same bound; they differ by the dropped constants and, with
    ``reg_covar`` = ε, by (ε/2) Σ_k N_k tr E[Λ_k]."""
    X, _ = make_blobs(n=300, d=3, k=3, seed=2)
    K, T = 4, 8
    resp = random_resp(len(X), K, seed=3)
    theirs = sklearn_fit(
        X, resp, n_components=K, covariance_type=covariance_type, tol=0.0, max_iter=T,
        weight_concentration_prior_type=prior_type, reg_covar=reg_covar,
    )
    prior = prior_of(theirs, prior_type)
    model = VariationalMixture(Gaussian(covariance_type, reg_covar), K, prior)
    data = InMemory(X, chunk_size=50)
    params = model.maximize(data.statistics(model, lambda start, rows: resp[start:][: len(rows)]))
    constant = dropped_constants(prior, covariance_type, len(X), K, 3)
    result = data.expectation(model, params)
    for t in range(T):
        stats, total = result.stats, result.total_weight
        before = model.objective(params, result) * total
        entropy = before - model.expected_log_likelihood(params, stats)
        params = model.maximize(stats)
        bound = model.expected_log_likelihood(params, stats) + entropy
        regularised = 0.5 * reg_covar * stats.components.resp_sum @ trace_of_mean_precisions(
            params.components.precisions_cholesky, covariance_type, K, 3
        )
        assert_allclose(bound, theirs.lower_bounds_[t] + constant + regularised, rtol=1e-10)
        result = data.expectation(model, params)
        after = model.objective(params, result) * total
        if reg_covar == 0.0:
            # The M-step and the E-step each maximise the bound exactly.
            slack = 1e-12 * abs(bound)
            assert before <= bound + slack and bound <= after + slack


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_regularization_gap_is_the_exact_loss_of_the_regularised_m_step(covariance_type):
    X, _ = make_blobs(n=200, d=3, k=2, seed=4)
    resp = random_resp(len(X), 3, seed=5)
    estimator = quietly(
        VariationalGaussianMixture(3, covariance_type=covariance_type, max_iter=0,
                                   resp_init=resp).fit, X,
    )
    prior = prior_of(estimator, "dirichlet_process")
    exact = VariationalMixture(Gaussian(covariance_type, 0.0), 3, prior)
    regularised = VariationalMixture(Gaussian(covariance_type, 0.5), 3, prior)
    data = InMemory(X)
    stats = data.statistics(exact, lambda start, rows: resp[start:][: len(rows)])

    def bound_without_entropy(params):
        return exact.expected_log_likelihood(params, stats)

    loss = bound_without_entropy(exact.maximize(stats)) - bound_without_entropy(
        regularised.maximize(stats)
    )
    gap = regularised.regularization_gap(regularised.maximize(stats), stats)
    assert loss > 0
    assert_allclose(gap * len(X), loss, rtol=1e-8)


def test_lower_bound_is_the_elbo_of_the_returned_posterior(blobs):
    X, _ = blobs
    model = VariationalGaussianMixture(4, random_state=0, tol=1e-9, max_iter=500).fit(X)
    assert model.converged_
    assert model.lower_bound_ == model.lower_bounds_[-1]
    assert len(model.lower_bounds_) == model.n_iter_
    # A warm start without iterations evaluates the fitted posterior: the same bound.
    fitted = model.lower_bound_
    model.set_params(warm_start=True, max_iter=0).fit(X)
    assert model.lower_bounds_ == []
    assert_allclose(model.lower_bound_, fitted, rtol=1e-12)


# ---------------------------------------------------------------------- the guarantees
problems = st.fixed_dictionaries(
    {
        "n": st.integers(30, 250),
        "d": st.integers(1, 4),
        "k": st.integers(1, 5),
        "seed": st.integers(0, 2**16),
        "spread": st.floats(0.5, 8.0),
        "covariance_type": st.sampled_from(COVARIANCE_TYPES),
        "prior_type": st.sampled_from(PRIOR_TYPES),
        "concentration": st.floats(1e-3, 1e2),
        "reg_covar": st.sampled_from([0.0, 1e-6]),
        "random_init": st.booleans(),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems)
def test_elbo_never_decreases(problem):
    X, _ = make_blobs(
        n=problem["n"], d=problem["d"], k=max(problem["k"] - 1, 1), seed=problem["seed"],
        spread=problem["spread"],
    )
    start = (
        dict(init_params="random", random_state=problem["seed"]) if problem["random_init"]
        else dict(resp_init=random_resp(len(X), problem["k"], problem["seed"]))
    )
    model = VariationalGaussianMixture(
        problem["k"], covariance_type=problem["covariance_type"], tol=0.0, max_iter=15,
        weight_concentration_prior_type=problem["prior_type"],
        weight_concentration_prior=problem["concentration"], reg_covar=problem["reg_covar"],
        monotonic="raise", **start,
    )
    quietly(model.fit, X)
    bounds = np.array(model.lower_bounds_)
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()


@pytest.mark.parametrize("chunk_size", [1, 7, 64, None])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_results_do_not_depend_on_chunk_size(covariance_type, chunk_size):
    X, _ = make_blobs(n=250, d=3, k=3, seed=6)
    options = dict(covariance_type=covariance_type, max_iter=10, tol=0.0,
                   resp_init=random_resp(len(X), 3, seed=7))
    whole = quietly(VariationalGaussianMixture(3, chunk_size=len(X), **options).fit, X)
    chunked = quietly(VariationalGaussianMixture(3, chunk_size=chunk_size, **options).fit, X)
    assert_allclose(chunked.lower_bounds_, whole.lower_bounds_, rtol=1e-11)
    for name in POSTERIOR:
        assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_unneeded_components_are_pruned(covariance_type, prior_type):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.arange(3), [300, 200, 100])
    X = centres[labels] + rng.normal(size=(600, 2))
    model = VariationalGaussianMixture(
        10, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
        weight_concentration_prior=1e-3, random_state=0, max_iter=1000, tol=1e-6,
    ).fit(X)
    assert model.converged_
    assert model.n_effective_components_ == 3
    assert adjusted_rand_score(labels, model.predict(X)) == 1.0


def test_integer_sample_weight_equals_repeated_rows():
    X, _ = make_blobs(n=120, d=3, k=2, seed=8)
    weights = np.random.default_rng(0).integers(0, 4, size=len(X))
    resp = random_resp(len(X), 3, seed=9)
    options = dict(covariance_type="full", max_iter=20, tol=0.0)
    weighted = quietly(
        VariationalGaussianMixture(3, resp_init=resp, **options).fit, X, sample_weight=weights
    )
    repeated = quietly(
        VariationalGaussianMixture(3, resp_init=np.repeat(resp, weights, axis=0), **options).fit,
        np.repeat(X, weights, axis=0),
    )
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-11)
    for name in POSTERIOR + PRIOR:
        assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_far_from_the_origin_fit_as_centred_data(covariance_type):
    X, _ = make_blobs(n=300, d=2, k=3, seed=10)
    offset = 1e6
    resp = random_resp(len(X), 3, seed=11)
    options = dict(covariance_type=covariance_type, max_iter=15, tol=0.0, resp_init=resp)
    prior = dict(mean_prior=np.array([1.0, -1.0]))
    centred = quietly(VariationalGaussianMixture(3, **options, **prior).fit, X)
    shifted = quietly(
        VariationalGaussianMixture(
            3, **options, mean_prior=prior["mean_prior"] + offset
        ).fit, X + offset,
    )
    assert_allclose(shifted.means_ - offset, centred.means_, atol=1e-7)
    assert_allclose(shifted.covariances_, centred.covariances_, rtol=1e-6)
    assert_allclose(shifted.lower_bounds_, centred.lower_bounds_, rtol=1e-8)


def test_warm_start_continues_where_the_last_fit_stopped(blobs):
    X, _ = blobs
    resp = random_resp(len(X), 3)
    whole = quietly(VariationalGaussianMixture(3, max_iter=10, tol=0.0, resp_init=resp).fit, X)
    model = VariationalGaussianMixture(3, max_iter=4, tol=0.0, warm_start=True, resp_init=resp)
    quietly(model.fit, X)
    first = list(model.lower_bounds_)
    quietly(model.set_params(max_iter=6).fit, X)
    assert_allclose(first + model.lower_bounds_, whole.lower_bounds_, rtol=1e-12)
    assert_allclose(model.means_, whole.means_, rtol=1e-10)


# ---------------------------------------------------------------------- the prior
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
        (dict(mean_precision_prior=0.0), "mean_precision_prior"),
        (dict(degrees_of_freedom_prior=-2.0), "degrees_of_freedom_prior"),
        (dict(degrees_of_freedom_prior=1.0), r"greater than n_features - 1 = 2"),
        (dict(mean_prior=[0.0, 1.0]), r"'mean_prior' should have the shape \(3,\)"),
        (dict(mean_prior=[0.0, np.nan, 1.0]), "NaN"),
        (dict(covariance_prior=np.eye(2)), r"'covariance_prior' should have the shape \(3, 3\)"),
        (dict(covariance_prior=-np.eye(3)), r"'covariance_prior' \(full\) is not positive"),
        (dict(covariance_prior=np.triu(np.ones((3, 3)))), r"\(full\) is not symmetric"),
        (dict(covariance_prior=-1.0), "covariance_prior"),
        (dict(covariance_type="tied", covariance_prior=np.diag([1.0, 0.0, 1.0])),
         r"\(tied\) is not positive definite"),
        (dict(covariance_type="diag", covariance_prior=[1.0, 0.0, 1.0]), "should be positive"),
        (dict(covariance_type="spherical", covariance_prior=[1.0, 1.0, 1.0]),
         "positive float for covariance_type='spherical'"),
        (dict(resp_init=np.ones((5, 2))), r"'resp_init' should have the shape \(50, 2\)"),
        (dict(resp_init=-np.ones((50, 2))), "non-negative"),
    ],
)
def test_invalid_prior_is_refused_with_a_clear_error(options, message):
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match=message):
        VariationalGaussianMixture(2, **options).fit(X)


def test_singular_data_covariance_is_regularised_or_refused():
    X = np.random.default_rng(0).normal(size=(60, 3))
    X[:, 1] = 2.0
    model = VariationalGaussianMixture(2, random_state=0).fit(X)
    assert_allclose(model.covariance_prior_[1, 1], model.reg_covar)
    assert np.isfinite(model.lower_bound_)
    with pytest.raises(ValueError, match="default covariance_prior, is singular"):
        VariationalGaussianMixture(2, reg_covar=0.0).fit(X)


def test_default_prior_is_the_data_s_moments():
    X, _ = make_blobs(n=200, d=3, k=2, seed=12)
    model = VariationalGaussianMixture(2, covariance_type="diag", max_iter=0).fit(X)
    assert model.weight_concentration_prior_ == 0.5
    assert model.mean_precision_prior_ == 1.0
    assert model.degrees_of_freedom_prior_ == 3.0
    assert_allclose(model.mean_prior_, X.mean(axis=0), rtol=1e-13)
    assert_allclose(model.covariance_prior_, X.var(axis=0, ddof=1), rtol=1e-12)


# ---------------------------------------------------------------------- the estimator
def test_torch_input_agrees_with_numpy():
    torch = pytest.importorskip("torch")
    X, _ = make_blobs(n=300, d=3, k=3, seed=13)
    resp = random_resp(len(X), 4, seed=14)
    options = dict(max_iter=15, tol=0.0, resp_init=resp)
    on_numpy = quietly(VariationalGaussianMixture(4, **options).fit, X)
    on_torch = quietly(VariationalGaussianMixture(4, **options).fit, torch.from_numpy(X))
    assert_allclose(on_torch.lower_bounds_, on_numpy.lower_bounds_, rtol=1e-12)
    for name in (*POSTERIOR, "mean_prior_", "covariance_prior_"):
        value = getattr(on_torch, name)
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
        assert_allclose(value.numpy(), getattr(on_numpy, name), rtol=1e-10, atol=1e-13)
    proba = on_torch.predict_proba(torch.from_numpy(X))
    assert isinstance(proba, torch.Tensor)
    assert_allclose(proba.numpy(), on_numpy.predict_proba(X), rtol=1e-9, atol=1e-13)
    single = quietly(
        VariationalGaussianMixture(4, **options).fit, torch.from_numpy(X).to(torch.float32)
    )
    assert_allclose(single.lower_bound_, on_numpy.lower_bound_, rtol=1e-5)


def test_callbacks_see_the_posterior_and_the_bound(blobs):
    X, _ = blobs
    seen = []
    model = quietly(
        VariationalGaussianMixture(3, random_state=0, tol=0.0, max_iter=6,
                                   callbacks=seen.append).fit, X,
    )
    assert [info.iteration for info in seen] == list(range(7))
    assert_allclose([info.lower_bound for info in seen[1:]], model.lower_bounds_)
    assert_allclose(seen[-1].params["weight_concentration_"], model.weight_concentration_)


def test_save_and_load_round_trip(tmp_path, blobs):
    import emkit

    X, _ = blobs
    model = VariationalGaussianMixture(4, random_state=0).fit(X)
    loaded = emkit.load(model.save(tmp_path / "vgm.emkit"))
    assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-12)
    assert loaded.n_effective_components_ == model.n_effective_components_
    a, b = loaded.weight_concentration_
    assert a.shape == b.shape == (4,)


def test_chunked_fits_batch_equals_fit_and_incremental_never_decreases():
    X, _ = make_blobs(n=600, d=3, k=3, seed=15)
    resp = random_resp(len(X), 4, seed=16)
    # Default priors come from the data a fit sees first; fix them to compare.
    options = dict(tol=0.0, resp_init=resp, mean_prior=X.mean(axis=0),
                   covariance_prior=np.cov(X.T), monotonic="raise")
    chunks = [X[:200], X[200:450], X[450:]]
    whole = quietly(VariationalGaussianMixture(4, max_iter=9, **options).fit, X)

    def started():
        return quietly(
            VariationalGaussianMixture(4, max_iter=0, warm_start=True, **options).fit, X
        )

    batch = quietly(started().fit_chunks, chunks, n_passes=10, update="batch")
    assert_allclose(batch.lower_bounds_[-1], whole.lower_bounds_[-1], rtol=1e-12)
    assert_allclose(batch.means_, whole.means_, rtol=1e-10)
    incremental = quietly(started().fit_chunks, chunks, n_passes=10, update="incremental")
    assert (np.diff(incremental.lower_bounds_) > 0).all()


def test_the_bound_is_what_the_loop_monitors(blobs, monkeypatch):
    X, _ = blobs
    growing = itertools.count()
    monkeypatch.setattr(
        VariationalMixture, "kl_divergence", lambda self, params: 1e3 * next(growing)
    )
    model = VariationalGaussianMixture(3, random_state=0, tol=0.0, max_iter=3, monotonic="raise")
    with pytest.raises(MonotonicityError, match="iteration 1"):
        quietly(model.fit, X)


# With more than one component, the random initialisation (k-means, k-means++ or random
# responsibilities) draws differently on rows repeated in place of integer weights, so the
# fits start apart and may end in different local optima or label orders. From the same
# initial responsibilities, weights and repetition give identical fits:
# test_integer_sample_weight_equals_repeated_rows.
RANDOM_INIT_WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "random initialisation draws differently on repeated rows; equivalence from fixed "
        "initial responsibilities is tested separately"
    ),
}


@parametrize_with_checks(
    [
        VariationalGaussianMixture(),
        VariationalGaussianMixture(n_components=2, covariance_type="diag", chunk_size=7),
        VariationalGaussianMixture(
            n_components=2, covariance_type="tied", init_params="random",
            weight_concentration_prior_type="dirichlet_distribution",
        ),
        VariationalGaussianMixture(
            n_components=3, covariance_type="spherical", init_params="k-means++"
        ),
    ],
    expected_failed_checks=lambda estimator: (
        RANDOM_INIT_WEIGHTS if estimator.n_components > 1 else {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
