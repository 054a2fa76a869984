"""The EM family through one engine: E-step strategies and M-step variants."""

import dataclasses
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans as SKLearnKMeans

from conftest import COVARIANCE_TYPES, make_blobs, starting_values
from emkit import GaussianMixture
from emkit.distributions.gaussian import Gaussian, GaussianParams
from emkit.em import Mixture, MixtureParams, MonotonicityError, run_em
from emkit.em.maximization import ConditionalMaximization, Generalized
from emkit.em.strategies import Annealed, Exact, Hard, MonteCarlo, Stochastic
from emkit.executors import InMemory

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Monte Carlo tolerance: stochastic and Monte Carlo EM end within this much of the exact
#: optimum's mean log-likelihood on the planted data below (observed: 1e-4 to 6e-4).
MC_LOG_LIKELIHOOD_TOL = 2e-3
#: ... and their means within this distance of the exact optimum's (observed: up to 0.05,
#: for clusters of unit scale that overlap).
MC_MEANS_TOL = 0.15


def overlapping_blobs():
    return make_blobs(n=4000, d=2, k=3, seed=11, spread=1.5)[0]


def sorted_means(model):
    return model.means_[np.argsort(model.means_[:, 0])]


def test_default_algorithm_is_exact_em_unchanged():
    X, _ = make_blobs(n=300, d=2, k=2, seed=1)
    start = starting_values(X, 2, "full")
    plain = GaussianMixture(2, max_iter=20, tol=0.0, **start).fit(X)
    named = GaussianMixture(2, max_iter=20, tol=0.0, algorithm="em", **start).fit(X)
    instance = GaussianMixture(2, max_iter=20, tol=0.0, algorithm=Exact(), **start).fit(X)
    assert plain.lower_bounds_ == named.lower_bounds_ == instance.lower_bounds_
    assert_array_equal(plain.covariances_, instance.covariances_)


@dataclasses.dataclass(frozen=True)
class FixedSpherical(Gaussian):
    """Spherical components whose variance is fixed: the M-step moves the means only."""

    variance: float = 1.0

    def maximize(self, stats):
        means = super().maximize(stats).means
        variances = np.full(len(means), self.variance)
        return GaussianParams(means, variances, 1.0 / np.sqrt(variances))


@dataclasses.dataclass(frozen=True)
class EqualWeights(Mixture):
    """A mixture whose weights stay 1/K."""

    def maximize_weights(self, stats):
        return np.full(self.n_components, 1.0 / self.n_components)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_em_with_equal_fixed_spherical_components_is_lloyds_kmeans(seed):
    X, _ = make_blobs(n=1500, d=3, k=4, seed=seed, spread=2.0)
    rng = np.random.default_rng(seed)
    centres = X[rng.choice(len(X), 4, replace=False)]
    variance = 1.7
    model = EqualWeights(FixedSpherical("spherical", 0.0, variance), 4)
    start = MixtureParams(
        np.full(4, 0.25), GaussianParams(centres, np.full(4, variance), np.full(4, variance**-0.5))
    )
    result = run_em(model, InMemory(X, chunk_size=100), start, max_iter=300, tol=1e-300,
                    strategy=Hard(), monotonic="raise")
    kmeans = SKLearnKMeans(4, init=centres, n_init=1, algorithm="lloyd", tol=0.0,
                           max_iter=300).fit(X)
    assert result.converged
    assert_allclose(result.params.components.means, kmeans.cluster_centers_, rtol=1e-10)
    # The classification log-likelihood is -inertia / (2 sigma^2) up to constants.
    constant = np.log(0.25) - 1.5 * np.log(2 * np.pi * variance)
    assert_allclose(result.lower_bounds[-1],
                    constant - kmeans.inertia_ / (2 * variance * len(X)), rtol=1e-12)
    assert (np.diff(result.lower_bounds) >= 0).all()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_hard_em_monitors_the_classification_likelihood(covariance_type):
    X, _ = make_blobs(n=500, d=2, k=3, seed=3)
    model = GaussianMixture(3, covariance_type=covariance_type, algorithm="hard",
                            init_params="random", random_state=0, monotonic="raise",
                            max_iter=50, tol=0.0).fit(X)
    bounds = np.array(model.lower_bounds_)
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()
    # max_k log pi_k p(x | k) = log p(x) + log max_k p(k | x)
    classification = model.score_samples(X) + np.log(model.predict_proba(X).max(axis=1))
    assert_allclose(model.lower_bound_, classification.mean(), rtol=1e-12)
    assert model.lower_bound_ <= model.score(X)


@pytest.mark.parametrize("algorithm", ["stochastic", "monte-carlo"])
@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_stochastic_and_monte_carlo_em_reach_the_exact_optimum(algorithm, random_state):
    X = overlapping_blobs()
    exact = GaussianMixture(3, random_state=0, tol=1e-9, max_iter=1000).fit(X)
    model = GaussianMixture(3, random_state=random_state, algorithm=algorithm,
                            max_iter=300, tol=1e-4).fit(X)
    assert model.converged_
    assert abs(model.lower_bound_ - exact.lower_bound_) < MC_LOG_LIKELIHOOD_TOL
    assert np.abs(sorted_means(model) - sorted_means(exact)).max() < MC_MEANS_TOL


def test_monte_carlo_sample_size_grows_until_the_noise_is_below_tol():
    X = overlapping_blobs()
    exact = GaussianMixture(3, random_state=0, tol=1e-10, max_iter=1000).fit(X)
    sizes = []
    model = GaussianMixture(
        3, random_state=0, algorithm=MonteCarlo(n_samples=5), max_iter=500, tol=1e-6,
        callbacks=lambda info: sizes.append(info.setting.n_samples),
    ).fit(X)
    assert model.converged_
    assert sizes[0] == 5 and sizes[-1] > 50
    assert (np.diff(sizes) >= 0).all()
    assert abs(model.lower_bound_ - exact.lower_bound_) < 1e-4
    # The last `patience` changes were all below tol.
    assert (np.abs(np.diff(model.lower_bounds_)[-3:]) < 1e-6).all()


@pytest.mark.parametrize("algorithm", ["stochastic", "monte-carlo"])
def test_random_draws_are_reproducible_and_independent_of_threads(algorithm):
    X = overlapping_blobs()
    options = dict(algorithm=algorithm, max_iter=15, tol=0.0, chunk_size=97)
    one = GaussianMixture(3, random_state=5, n_jobs=1, **options).fit(X)
    two = GaussianMixture(3, random_state=5, n_jobs=2, **options).fit(X)
    again = GaussianMixture(3, random_state=5, n_jobs=2, **options).fit(X)
    other = GaussianMixture(3, random_state=6, n_jobs=1, **options).fit(X)
    assert one.lower_bounds_ == two.lower_bounds_ == again.lower_bounds_
    assert_array_equal(one.means_, two.means_)
    assert other.lower_bounds_ != one.lower_bounds_


def test_stochastic_em_draws_one_class_per_row():
    X = overlapping_blobs()
    start = starting_values(X, 3, "full")
    model = Mixture(Gaussian("full"), 3)
    data = InMemory(X - X.mean(axis=0))
    params = GaussianMixture(3, max_iter=0, **start).fit(X)._fitted_params(X.mean(axis=0))
    from emkit.em.strategies import EStepPass

    estep = EStepPass(Stochastic(), Stochastic().schedule().setting(0), 3, (0,))
    result = data.expectation(model, params, estep)
    counts = result.stats.resp_sum
    assert_allclose(counts, np.round(counts), atol=1e-9)
    assert counts.sum() == len(X)


def test_annealing_raises_the_temperature_then_runs_exact_em():
    X, _ = make_blobs(n=1000, d=2, k=4, seed=5)
    betas = []
    strategy = Annealed(betas=(0.2, 0.4, 0.7))
    model = GaussianMixture(4, random_state=0, algorithm=strategy, monotonic="raise",
                            tol=1e-8, max_iter=300,
                            callbacks=lambda info: betas.append(info.setting.beta)).fit(X)
    assert betas[:5] == [0.2, 0.4, 0.7, 1.0, 1.0]
    assert model.converged_ and model.n_iter_ > 4
    # From the first iteration on exact statistics, the log-likelihood never decreases.
    bounds = np.array(model.lower_bounds_)
    assert (np.diff(bounds[3:]) >= -1e-12 * np.abs(bounds[4:])).all()
    assert_allclose(model.score(X), model.lower_bound_, rtol=1e-12)


def test_annealing_is_not_held_to_monotonicity_before_temperature_one():
    X, _ = make_blobs(n=600, d=2, k=3, seed=6)
    bounds = GaussianMixture(3, random_state=0, algorithm=Annealed(0.05, 1.5),
                             monotonic="raise", max_iter=8, tol=0.0).fit(X).lower_bounds_
    assert np.min(np.diff(bounds)) < 0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_generalized_em_is_monotone_and_reaches_the_em_optimum(covariance_type):
    X, _ = make_blobs(n=400, d=2, k=2, seed=7)
    start = starting_values(X, 2, covariance_type)
    exact = GaussianMixture(2, covariance_type=covariance_type, tol=1e-10, max_iter=500,
                            **start).fit(X)
    origin = X.mean(axis=0)
    params = exact.set_params(max_iter=0).fit(X)._fitted_params(origin)
    model = Mixture(Gaussian(covariance_type), 2, maximization=Generalized(max_steps=3))
    result = run_em(model, InMemory(X, origin=origin), params, max_iter=300, tol=1e-9,
                    monotonic="raise")
    bounds = np.array(result.lower_bounds)
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()
    exact.set_params(max_iter=500).fit(X)
    assert abs(bounds[-1] - exact.lower_bound_) < 1e-5


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_ecm_gives_the_em_iterates_for_gaussians(covariance_type):
    X, _ = make_blobs(n=400, d=3, k=3, seed=8)
    start = starting_values(X, 3, covariance_type)
    exact = GaussianMixture(3, covariance_type=covariance_type, tol=0.0, max_iter=15,
                            **start).fit(X)
    origin = X.mean(axis=0)
    params = GaussianMixture(3, covariance_type=covariance_type, max_iter=0,
                             **start).fit(X)._fitted_params(origin)
    model = Mixture(Gaussian(covariance_type), 3, maximization=ConditionalMaximization())
    result = run_em(model, InMemory(X, origin=origin), params, max_iter=15, tol=0.0,
                    monotonic="raise")
    assert_allclose(result.lower_bounds, exact.lower_bounds_, rtol=1e-10)


@dataclasses.dataclass(frozen=True)
class WrongPartialStep(Gaussian):
    """A partial M-step that moves every mean away from the data: it lowers Q."""

    def improve(self, params, stats):
        return GaussianParams(params.means + 1.0, params.covariances, params.precisions_cholesky)


@pytest.mark.parametrize("mode", ["raise", "warn"])
def test_a_partial_m_step_that_lowers_q_is_reported(mode):
    X, _ = make_blobs(n=300, d=2, k=2, seed=9)
    start = starting_values(X, 2, "diag")
    params = GaussianMixture(2, covariance_type="diag", max_iter=0, **start).fit(X)
    model = Mixture(WrongPartialStep("diag"), 2, maximization=Generalized())
    data = InMemory(X, origin=X.mean(axis=0))
    engine_params = params._fitted_params(X.mean(axis=0))
    if mode == "raise":
        with pytest.raises(MonotonicityError, match=r"lowered Q at iteration 1, in its "
                                                    r"'components' step"):
            run_em(model, data, engine_params, max_iter=3, tol=0.0, monotonic="raise")
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_em(model, data, engine_params, max_iter=1, tol=0.0, monotonic="warn")
        assert any("lowered Q" in str(w.message) for w in caught)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_exact_em_is_monotone_from_random_starts(covariance_type):
    X, _ = make_blobs(n=500, d=3, k=4, seed=12, spread=2.0)
    for random_state in range(3):
        model = GaussianMixture(4, covariance_type=covariance_type, init_params="random",
                                random_state=random_state, monotonic="raise", max_iter=60,
                                tol=0.0).fit(X)
        bounds = np.array(model.lower_bounds_)
        assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()
