"""E-step strategies and online fitting for VariationalGaussianMixture and
MixtureOfRegressions: the same engine as the other mixtures."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from conftest import COVARIANCE_TYPES, make_blobs
from emkit import MixtureOfRegressions, VariationalGaussianMixture
from emkit.em.strategies import Annealed, EStepPass, MonteCarlo, Stochastic
from emkit.models.mixture_of_regressions import StructuredParams
from test_mixture_of_regressions import best_permutation, lines

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Stochastic and Monte Carlo (VB)EM end within this much of the exact optimum's objective
#: per sample on the planted data below (observed: VBEM up to 5e-4 for SEM and 9e-5 for
#: MCEM; regressions up to 9e-5 and 1.5e-5).
MC_OBJECTIVE_TOL = 2e-3
#: ... and their means or coefficients within this distance of the exact optimum's
#: (observed: up to 0.05 for the overlapping clusters, 0.003 for the regressions).
MC_PARAMS_TOL = 0.15
#: One pass of online VB (mini-batches of 2,000 of 200,000 rows) ends within this much of
#: the batch VBEM ELBO per sample (observed: 5e-5).
ONLINE_VB_TOL = 2e-4
#: One pass of online EM for the regressions (same sizes) ends within this much of the batch
#: optimum's mean log-likelihood (observed: 2e-5).
ONLINE_REGRESSION_TOL = 2e-4


def overlapping_blobs():
    return make_blobs(n=4000, d=2, k=3, seed=11, spread=1.5)[0]


def fixed_prior(X, **options):
    """A prior that does not depend on which rows a fit sees first."""
    return dict(mean_prior=X.mean(axis=0), covariance_prior=np.cov(X.T), **options)


def vgm_elbo(model, X):
    """The VBEM ELBO per sample of ``model``'s posterior on ``X`` (exact E-step)."""
    evaluate = clone(model).set_params(warm_start=True, max_iter=0, algorithm="em")
    for name, value in vars(model).items():
        if name.endswith("_") and not name.startswith("_"):
            setattr(evaluate, name, value)
    return evaluate.fit(X).lower_bound_


def sorted_means(model):
    return model.means_[np.argsort(model.means_[:, 0])]


def assert_nondecreasing(bounds):
    bounds = np.asarray(bounds)
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()


# ---------------------------------------------------------------------- VBEM strategies
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_variational_cem_assigns_hard_and_its_bound_never_decreases(covariance_type):
    X, _ = make_blobs(n=600, d=2, k=3, seed=3)
    model = VariationalGaussianMixture(
        3, covariance_type=covariance_type, algorithm="hard", init_params="random",
        random_state=0, monotonic="raise", tol=1e-13, max_iter=200,
    ).fit(X)
    assert model.converged_
    assert_nondecreasing(model.lower_bounds_)
    # Point-mass q(Z): every N_k = beta_k - beta_0 counts rows, those of the argmax.
    counts = model.mean_precision_ - model.mean_precision_prior_
    assert_allclose(counts, np.bincount(model.predict(X), minlength=3), atol=1e-9)
    # The bound is (sum_n max_k rho_nk - KL) / N; score_samples is log sum_k e^rho_nk.
    best_rho = model.score_samples(X) + np.log(model.predict_proba(X).max(axis=1))
    engine = model._model()
    kl = engine.kl_divergence(model._fitted_params(model._prior_origin))
    assert_allclose(model.lower_bound_, best_rho.mean() - kl / len(X), rtol=1e-12)
    assert model.lower_bound_ < vgm_elbo(model, X)


@pytest.mark.parametrize("algorithm", ["stochastic", "monte-carlo"])
@pytest.mark.parametrize("random_state", [0, 1])
def test_stochastic_and_monte_carlo_vbem_reach_the_vbem_optimum(algorithm, random_state):
    X = overlapping_blobs()
    options = fixed_prior(X, weight_concentration_prior_type="dirichlet_distribution")
    exact = VariationalGaussianMixture(3, random_state=0, tol=1e-9, max_iter=1000,
                                       **options).fit(X)
    model = VariationalGaussianMixture(3, random_state=random_state, algorithm=algorithm,
                                       tol=1e-4, max_iter=300, monotonic="raise",
                                       **options).fit(X)
    assert model.converged_
    # Only q(Z) is simulated: the reported bound is the exact ELBO of the last posterior.
    assert_allclose(model.lower_bound_, vgm_elbo(model, X), rtol=1e-12)
    assert abs(model.lower_bound_ - exact.lower_bound_) < MC_OBJECTIVE_TOL
    assert np.abs(sorted_means(model) - sorted_means(exact)).max() < MC_PARAMS_TOL


def test_monte_carlo_vbem_draws_are_reproducible():
    X = overlapping_blobs()
    options = dict(algorithm=MonteCarlo(n_samples=3), max_iter=8, tol=0.0, chunk_size=500)
    one = VariationalGaussianMixture(3, random_state=4, n_jobs=1, **options).fit(X)
    two = VariationalGaussianMixture(3, random_state=4, n_jobs=2, **options).fit(X)
    other = VariationalGaussianMixture(3, random_state=5, n_jobs=1, **options).fit(X)
    assert one.lower_bounds_ == two.lower_bounds_
    assert other.lower_bounds_ != one.lower_bounds_


def test_annealed_vbem_ends_at_the_vbem_optimum():
    X = overlapping_blobs()
    options = fixed_prior(X, weight_concentration_prior_type="dirichlet_distribution")
    exact = VariationalGaussianMixture(3, random_state=0, tol=1e-10, max_iter=2000,
                                       **options).fit(X)
    betas = []
    model = VariationalGaussianMixture(
        3, random_state=0, algorithm=Annealed(betas=(0.3, 0.6, 0.9)), tol=1e-10,
        max_iter=2000, monotonic="raise", callbacks=lambda info: betas.append(info.setting.beta),
        **options,
    ).fit(X)
    assert betas[:5] == [0.3, 0.6, 0.9, 1.0, 1.0]
    assert model.converged_
    assert_nondecreasing(model.lower_bounds_[3:])
    assert abs(model.lower_bound_ - exact.lower_bound_) < 1e-7
    assert_allclose(sorted_means(model), sorted_means(exact), atol=1e-3)


# ---------------------------------------------------------------------- online VB
def planted_stream(n=200_000, seed=4):
    return make_blobs(n=n, d=2, k=3, seed=seed)[0]


@pytest.mark.parametrize("n_samples_total", [None, 200_000])
def test_online_vb_reaches_the_batch_elbo_in_one_pass(n_samples_total):
    X = planted_stream()
    options = fixed_prior(X)
    batch = VariationalGaussianMixture(3, random_state=0, tol=1e-9, max_iter=500,
                                       **options).fit(X)
    online = VariationalGaussianMixture(3, random_state=0, n_samples_total=n_samples_total,
                                        **options)
    for start in range(0, len(X), 2000):
        online.partial_fit(X[start : start + 2000])
    assert online.n_steps_ == 100
    assert abs(vgm_elbo(online, X) - batch.lower_bound_) < ONLINE_VB_TOL
    # The last batches' estimates of the ELBO per sample are close to it too (observed:
    # 5e-3, the noise of batches of 2,000 rows).
    assert abs(np.mean(online.lower_bounds_[-20:]) - batch.lower_bound_) < 0.02


def test_fit_chunks_online_is_partial_fit_on_every_chunk():
    X = planted_stream(n=20_000, seed=5)
    options = fixed_prior(X, random_state=0, learning_offset=2.0)
    chunks = [X[i : i + 1000] for i in range(0, len(X), 1000)]
    streamed = VariationalGaussianMixture(3, **options).fit_chunks(chunks, n_passes=2)
    called = VariationalGaussianMixture(3, **options)
    for _ in range(2):
        for chunk in chunks:
            called.partial_fit(chunk)
    assert streamed.n_steps_ == called.n_steps_ == 40
    assert_allclose(streamed.means_, called.means_, rtol=1e-12)
    assert_allclose(streamed.lower_bounds_, called.lower_bounds_, rtol=1e-12)
    batch = VariationalGaussianMixture(3, random_state=0, tol=1e-9, **fixed_prior(X)).fit(X)
    assert abs(vgm_elbo(streamed, X) - batch.lower_bound_) < 1e-3


def test_online_vb_first_step_is_one_vbem_step_and_continues_a_fit():
    X, _ = make_blobs(n=500, d=2, k=3, seed=6)
    options = dict(random_state=0, tol=0.0)
    one_step = VariationalGaussianMixture(3, **options).partial_fit(X)
    fitted = VariationalGaussianMixture(3, max_iter=1, **options).fit(X)
    for name in ("weight_concentration_", "means_", "covariances_", "degrees_of_freedom_"):
        assert_allclose(getattr(one_step, name), getattr(fitted, name), rtol=1e-10)
    # On a fitted model (its prior kept), a step on all the data is one more VBEM step.
    stepped = VariationalGaussianMixture(3, max_iter=4, **options).fit(X).partial_fit(X)
    reference = VariationalGaussianMixture(3, max_iter=5, **options).fit(X)
    assert_allclose(stepped.means_, reference.means_, rtol=1e-10)
    assert_allclose(stepped.covariances_, reference.covariances_, rtol=1e-10)
    assert_allclose(stepped.lower_bound_, reference.lower_bounds_[-2], rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(20, 120), min_size=1, max_size=4),
    total=st.one_of(st.none(), st.floats(50.0, 1e6)),
)
def test_online_vb_posterior_holds_the_data_set_size(sizes, total):
    """Whatever the batches: sum_k N_k = N (n_samples_total, or the weight seen)."""
    X, _ = make_blobs(n=sum(sizes), d=2, k=2, seed=len(sizes))
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    model = VariationalGaussianMixture(2, random_state=0, n_samples_total=total,
                                       init_params="random")
    start = 0
    for size in sizes:
        model.partial_fit(X[start : start + size], sample_weight=weights[start : start + size])
        start += size
    counts = model.mean_precision_ - model.mean_precision_prior_
    expected = weights.sum() if total is None else total
    assert_allclose(counts.sum(), expected, rtol=1e-10)


# ---------------------------------------------------------------------- regressions
@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_regression_cem_assigns_hard_and_its_likelihood_never_decreases(family, groups):
    rng = np.random.default_rng(7)
    X, y, _, _ = lines(seed=7, n=1500)
    if family == "poisson":
        y = rng.poisson(np.exp(np.where(rng.uniform(size=len(X)) < 0.4, 1 + X @ [0.5, -0.5],
                                        -X @ [0.3, 0.4]))).astype(float)
    ids = rng.integers(0, 4, len(X)) if groups else None
    model = MixtureOfRegressions(
        2, family=family, algorithm="hard", random_state=0, monotonic="raise", tol=1e-13,
        max_iter=300, newton_steps=3,
    ).fit(X, y, groups=ids)
    assert_nondecreasing(model.lower_bounds_)
    # max_k log p(y, c = k | x) = log p(y | x) + log max_k p(c = k | y, x)
    best = model.log_likelihood(X, y, groups=ids) + np.log(
        model.predict_proba(X, y, groups=ids).max(axis=1))
    assert_allclose(model.lower_bound_, best.mean(), rtol=1e-10)
    assert model.lower_bound_ <= model.score(X, y, groups=ids)
    if not groups and family == "gaussian":
        assert model.converged_
        labels = model.predict_proba(X, y).argmax(axis=1)
        assert_allclose(model.weights_, np.bincount(labels, minlength=2) / len(X), atol=1e-12)


def test_regression_cem_with_ridge_monitors_the_penalised_classification_likelihood():
    X, y, _, _ = lines(seed=8, n=800)
    model = MixtureOfRegressions(2, algorithm="hard", ridge=2.0, random_state=0,
                                 monotonic="raise", tol=0.0, max_iter=30).fit(X, y)
    assert_nondecreasing(model.lower_bounds_)
    best = model.log_likelihood(X, y) + np.log(model.predict_proba(X, y).max(axis=1))
    penalty = -0.5 * 2.0 * ((model.coef_**2).sum(axis=1) / model.scale_**2).sum()
    assert_allclose(model.lower_bound_, best.mean() + penalty / len(X), rtol=1e-10)


@pytest.mark.parametrize("algorithm", ["stochastic", "monte-carlo"])
@pytest.mark.parametrize("random_state", [0, 1])
def test_stochastic_and_monte_carlo_regressions_reach_the_exact_optimum(algorithm,
                                                                         random_state):
    X, y, _, _ = lines(seed=9, n=4000)
    exact = MixtureOfRegressions(2, random_state=0, tol=1e-10, max_iter=1000).fit(X, y)
    model = MixtureOfRegressions(2, random_state=random_state, algorithm=algorithm,
                                 tol=1e-4, max_iter=300).fit(X, y)
    assert model.converged_
    assert_allclose(model.lower_bound_, model.score(X, y), rtol=1e-12)
    assert abs(model.lower_bound_ - exact.lower_bound_) < MC_OBJECTIVE_TOL
    order = list(best_permutation(model.coef_, exact.coef_))
    assert np.abs(model.coef_[order] - exact.coef_).max() < MC_PARAMS_TOL


def test_annealed_regressions_end_at_the_exact_optimum():
    X, y, _, _ = lines(seed=10, n=3000)
    exact = MixtureOfRegressions(2, random_state=0, tol=1e-11, max_iter=1000).fit(X, y)
    model = MixtureOfRegressions(2, random_state=0, algorithm="annealed", tol=1e-11,
                                 max_iter=1000, monotonic="raise").fit(X, y)
    assert model.converged_
    assert abs(model.lower_bound_ - exact.lower_bound_) < 1e-9
    order = list(best_permutation(model.coef_, exact.coef_))
    assert_allclose(model.coef_[order], exact.coef_, atol=1e-5)


@pytest.mark.parametrize("strategy", [Stochastic(), MonteCarlo(n_samples=4)])
def test_a_revisit_redraws_the_same_responsibilities(strategy):
    """Checked Newton steps revisit the data with the E-step's q: the same draws."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 2))
    y = rng.poisson(np.exp(0.5 + X @ [0.4, -0.3])).astype(float)
    model = MixtureOfRegressions(2, family="poisson", chunk_size=70, max_iter=0,
                                 random_state=0).fit(X, y)
    engine = model._model(model._fitted_prior())
    data = model._data(X, y[:, None], {"groups": None, "concomitant": None})
    params = model._fitted_params({})
    estep = EStepPass(strategy, strategy.schedule().setting(0), seed=3, key=(0,))
    expectation = data.expectation(engine, params, estep).stats
    again = expectation.revisit(params, prior=True, components=True)
    assert_array_equal(again.components.gradient, expectation.stats.components.gradient)
    assert_array_equal(again.prior.resp_sum, expectation.stats.prior.resp_sum)
    counts = expectation.stats.prior.resp_sum
    assert_allclose(counts * strategy.n_samples, np.round(counts * strategy.n_samples),
                    atol=1e-9)


# ---------------------------------------------------------------------- online regressions
def test_online_regressions_reach_the_batch_optimum_in_one_pass():
    X, y, _, _ = lines(seed=3, n=200_000)
    batch = MixtureOfRegressions(2, random_state=0, tol=1e-10, max_iter=1000).fit(X, y)
    online = MixtureOfRegressions(2, random_state=0, learning_decay=0.6, learning_offset=1.0)
    for start in range(0, len(X), 2000):
        online.partial_fit(X[start : start + 2000], y[start : start + 2000])
    assert online.n_steps_ == 100
    assert abs(online.score(X, y) - batch.lower_bound_) < ONLINE_REGRESSION_TOL
    order = list(best_permutation(online.coef_, batch.coef_))
    assert np.abs(online.coef_[order] - batch.coef_).max() < 0.02


@pytest.mark.parametrize("ridge", [0.0, 5.0])
def test_regression_partial_fit_is_one_em_step(ridge):
    """Statistics at the scale of the data: with ridge too, a step on all the data of a
    fitted model is one more EM iteration, and a first step is fit's first iteration."""
    X, y, _, _ = lines(seed=12, n=600)
    ids = np.random.default_rng(12).integers(0, 3, len(X))
    options = dict(random_state=0, tol=0.0, ridge=ridge)
    stepped = MixtureOfRegressions(2, max_iter=3, **options).fit(X, y, groups=ids)
    stepped.partial_fit(X, y, groups=ids)
    reference = MixtureOfRegressions(2, max_iter=4, **options).fit(X, y, groups=ids)
    for name in ("coef_", "intercept_", "scale_", "group_weights_"):
        assert_allclose(getattr(stepped, name), getattr(reference, name), rtol=1e-9)
    assert_allclose(stepped.lower_bound_, reference.lower_bounds_[-2], rtol=1e-12)
    first = MixtureOfRegressions(2, **options).partial_fit(X, y, groups=ids)
    fitted = MixtureOfRegressions(2, max_iter=1, **options).fit(X, y, groups=ids)
    assert_allclose(first.coef_, fitted.coef_, rtol=1e-9)
    assert first.n_steps_ == 1 and first.converged_ is False


def test_regression_stream_takes_in_new_groups():
    codes = np.repeat([0, 1, 2], 300)
    table = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    X, y, _, _ = lines(seed=13, n=900, groups=(codes, table))
    ids = np.array(["a", "b", "c"])[codes]
    model = MixtureOfRegressions(2, random_state=0)
    model.partial_fit(X[:600], y[:600], groups=ids[:600])
    assert list(model.groups_) == ["a", "b"]
    before = model.group_weights_.copy()
    # A group not seen yet starts from the population weights, as at prediction.
    resp = model.predict_proba(X[600:], y[600:], groups=ids[600:])
    model.partial_fit(X[600:], y[600:], groups=ids[600:])
    assert list(model.groups_) == ["a", "b", "c"]
    # Groups without rows in the batch keep their weights: their statistics only decay.
    assert_allclose(model.group_weights_[:2], before, rtol=1e-9)
    # The new group's statistics started at 0: its weights are its own rows' shares.
    assert_allclose(model.group_weights_[2], resp.mean(axis=0), rtol=1e-9)
    with pytest.raises(ValueError, match="another kind"):
        model.partial_fit(X[:10], y[:10], groups=np.arange(10))
    with pytest.raises(ValueError, match="same class prior"):
        model.partial_fit(X[:10], y[:10])


def test_regression_partial_fit_refuses_newton_parts_before_any_work():
    X, y, _, _ = lines(seed=14, n=200)
    with pytest.raises(ValueError, match=r"family='logistic'.*checked Newton steps"):
        MixtureOfRegressions(2, family="logistic").partial_fit(X, (y > 0).astype(float))
    model = MixtureOfRegressions(2)
    with pytest.raises(ValueError, match="softmax gating"):
        model.partial_fit(X, y, concomitant=X[:, :1])
    assert not hasattr(model, "coef_")


def test_averaged_statistics_cannot_be_revisited():
    X, _, _, _ = lines(seed=15, n=200)
    rng = np.random.default_rng(15)
    counts = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    model = MixtureOfRegressions(2, family="poisson", max_iter=0, random_state=0).fit(X, counts)
    engine = model._model(model._fitted_prior())
    data = model._data(X, counts[:, None], {"groups": None, "concomitant": None})
    params = model._fitted_params({})
    expectation = data.expectation(engine, params).stats
    averaged = 0.5 * expectation + 0.5 * expectation
    assert averaged.revisit is None
    assert_allclose(averaged.stats.components.gradient, expectation.stats.components.gradient)
    with pytest.raises(ValueError, match="statistics combined from several passes"):
        engine.maximize_from(params, averaged)
    assert isinstance(engine.maximize_from(params, expectation).params, StructuredParams)


# ---------------------------------------------------------------------- the parameter
ESTIMATORS = [VariationalGaussianMixture, MixtureOfRegressions]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_algorithm_is_validated_with_a_clear_error(estimator):
    X, y, _, _ = lines(seed=16, n=100)
    for bad in ("kmeans", 3, MonteCarlo):
        with pytest.raises(InvalidParameterError, match="'algorithm' parameter"):
            estimator(2, algorithm=bad).fit(X, y)
    with pytest.raises(ValueError, match="n_samples <= max_samples"):
        MonteCarlo(n_samples=5, max_samples=2)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("algorithm", ["hard", MonteCarlo(n_samples=7), Annealed(0.5, 1.5)])
def test_get_params_and_clone_round_trip(estimator, algorithm):
    model = estimator(2, algorithm=algorithm, learning_decay=0.8, learning_offset=3.0)
    params = model.get_params()
    assert params["algorithm"] == algorithm
    assert (params["learning_decay"], params["learning_offset"]) == (0.8, 3.0)
    copy = clone(model)
    assert copy.get_params()["algorithm"] == algorithm
    assert estimator(**params).get_params() == params
    X, y, _, _ = lines(seed=17, n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = copy.set_params(random_state=0, max_iter=5).fit(X, y)
    assert np.isfinite(fitted.lower_bound_)
