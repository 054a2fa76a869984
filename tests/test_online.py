"""Online, incremental and streamed EM: when the M-step runs, not what the model is."""

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import make_blobs, starting_values
from emkit import BernoulliMixture, GaussianMixture
from emkit.distributions.gaussian import Gaussian
from emkit.em import Mixture, MonotonicityError
from emkit.em.online import OnlineEM, run_incremental, step_size
from emkit.executors import InMemory, Stream

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: One pass of online EM over 1,000,000 rows ends within this much of the batch optimum's
#: mean log-likelihood (observed: 5e-6).
ONLINE_TOL = 1e-4


def chunks_of(X, size, weights=None):
    if weights is None:
        return [X[i : i + size] for i in range(0, len(X), size)]
    return [(X[i : i + size], weights[i : i + size]) for i in range(0, len(X), size)]


def assert_same_fit(a, b, rtol=1e-10):
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-12)


def test_step_sizes_follow_the_schedule():
    assert step_size(1, 0.7, 0.0) == 1.0
    assert_allclose(step_size(5, 0.6, 3.0), 8.0**-0.6)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_partial_fit_on_a_fitted_model_is_one_em_step(covariance_type):
    X, _ = make_blobs(n=500, d=3, k=3, seed=1)
    start = starting_values(X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, tol=0.0, **start)
    stepped = GaussianMixture(3, max_iter=4, **options).fit(X).partial_fit(X)
    fitted = GaussianMixture(3, max_iter=5, **options).fit(X)
    assert_same_fit(stepped, fitted)
    assert stepped.n_steps_ == 1
    assert_allclose(stepped.lower_bound_, fitted.lower_bounds_[-2], rtol=1e-12)


def test_partial_fit_on_an_unfitted_model_starts_like_fit():
    X, _ = make_blobs(n=400, d=2, k=3, seed=2)
    start = starting_values(X, 3, "full")
    online = GaussianMixture(3, **start).partial_fit(X)
    fitted = GaussianMixture(3, max_iter=1, tol=0.0, **start).fit(X)
    assert_same_fit(online, fitted)
    initialised = GaussianMixture(3, random_state=0).partial_fit(X)
    reference = GaussianMixture(3, random_state=0, max_iter=1, tol=0.0).fit(X)
    assert_same_fit(initialised, reference)


def test_partial_fit_averages_normalised_statistics_with_rho():
    """With decay 1 and offset 0, rho_t = 1/t: the normalised statistics after two batches
    are the mean of each batch's statistics at the parameters of its step."""
    X, _ = make_blobs(n=600, d=2, k=2, seed=3)
    start = starting_values(X, 2, "diag")
    first, second = X[:250], X[250:]
    model = GaussianMixture(2, covariance_type="diag", learning_decay=1.0, learning_offset=0.0,
                            **start)
    model.partial_fit(first).partial_fit(second)
    origin = model._online.origin
    mixture = Mixture(Gaussian("diag"), 2)
    params = GaussianMixture(2, covariance_type="diag", max_iter=0,
                             **start).fit(first)._fitted_params(origin)
    one = InMemory(first, origin=origin).expectation(mixture, params)
    params = mixture.maximize(one.stats * (1 / one.total_weight))
    two = InMemory(second, origin=origin).expectation(mixture, params)
    averaged = 0.5 * (one.stats * (1 / one.total_weight)) + 0.5 * (
        two.stats * (1 / two.total_weight))
    expected = mixture.maximize(averaged)
    assert_allclose(model.means_ - origin, expected.components.means, rtol=1e-10)
    assert_allclose(model.weights_, expected.weights, rtol=1e-12)
    assert_allclose(model.lower_bounds_, [one.log_likelihood, two.log_likelihood], rtol=1e-12)


def test_fit_chunks_online_equals_partial_fit_calls_and_fit_restarts_the_stream():
    X, _ = make_blobs(n=900, d=2, k=3, seed=4)
    weights = np.random.default_rng(0).integers(1, 3, size=len(X)).astype(float)
    start = starting_values(X, 3, "full")
    streamed = GaussianMixture(3, **start).fit_chunks(chunks_of(X, 200, weights), n_passes=2)
    called = GaussianMixture(3, **start)
    for _ in range(2):
        for rows, w in chunks_of(X, 200, weights):
            called.partial_fit(rows, sample_weight=w)
    assert_same_fit(streamed, called, rtol=1e-12)
    assert streamed.n_steps_ == 10
    called.fit(X)
    assert called._online is None
    assert called.partial_fit(X[:100]).n_steps_ == 1


def test_online_em_reaches_the_batch_optimum_in_one_pass_over_a_million_rows():
    rng = np.random.default_rng(0)
    n = 1_000_000
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 4.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.2], [1.1, 0.8]])
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    X = centres[labels] + rng.standard_normal((n, 2)) * scales[labels]
    batch = GaussianMixture(
        3, covariance_type="diag", tol=1e-10, max_iter=500, weights_init=[0.5, 0.3, 0.2],
        means_init=centres, precisions_init=scales**-2.0,
    ).fit(X)
    online = GaussianMixture(3, covariance_type="diag", random_state=0)
    online.fit_chunks(lambda: (X[i : i + 10_000] for i in range(0, n, 10_000)))
    assert online.n_steps_ == 100
    assert abs(online.score(X) - batch.lower_bound_) < ONLINE_TOL


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_incremental_em_is_monotone_and_reaches_the_optimum(covariance_type):
    X, _ = make_blobs(n=1200, d=2, k=3, seed=5, spread=2.0)
    start = starting_values(X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, **start)
    exact = GaussianMixture(3, tol=1e-10, max_iter=1000, **options).fit(X)
    bounds = []
    model = GaussianMixture(3, tol=1e-10, monotonic="raise",
                            callbacks=lambda info: bounds.append(info.elbo), **options)
    model.fit_chunks(chunks_of(X, 150), n_passes=200, update="incremental")
    assert bounds == model.lower_bounds_
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()
    assert model.converged_
    assert model.lower_bound_ <= model.score(X) + 1e-12
    assert abs(model.score(X) - exact.lower_bound_) < 1e-7
    # Incremental EM needs fewer passes than batch EM needs iterations.
    assert model.n_iter_ < exact.n_iter_


@dataclasses.dataclass(frozen=True)
class AlternatingMixture(Mixture):
    """Every other 'M-step' moves the means away from the data: it lowers Q."""

    calls: list = dataclasses.field(default_factory=list, kw_only=True)

    def maximize(self, stats):
        self.calls.append(len(self.calls))
        params = super().maximize(stats)
        if len(self.calls) % 2:
            return params
        moved = dataclasses.replace(params.components, means=params.components.means + 2.0)
        return dataclasses.replace(params, components=moved)


def test_incremental_em_reports_a_decrease_of_the_free_energy():
    X, _ = make_blobs(n=600, d=2, k=3, seed=6)
    start = starting_values(X, 3, "diag")
    origin = X.mean(axis=0)
    params = GaussianMixture(3, covariance_type="diag", max_iter=0,
                             **start).fit(X)._fitted_params(origin)
    data = InMemory(X, origin=origin, chunk_size=100)
    run_incremental(Mixture(Gaussian("diag"), 3), data, params, n_passes=3, tol=0.0,
                    monotonic="raise")
    with pytest.raises(MonotonicityError, match="free energy decreased at pass 2, chunk 0"):
        run_incremental(AlternatingMixture(Gaussian("diag"), 3), data, params, n_passes=3,
                        tol=0.0, monotonic="raise")


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_batch_em_over_a_stream_equals_fit(covariance_type):
    X, _ = make_blobs(n=700, d=3, k=3, seed=7)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(X))
    start = starting_values(X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, tol=0.0, **start)
    fitted = GaussianMixture(3, max_iter=12, **options).fit(X, sample_weight=weights)
    streamed = GaussianMixture(3, **options).fit_chunks(
        chunks_of(X, 64, weights), n_passes=13, update="batch")
    assert_allclose(streamed.lower_bounds_, fitted.lower_bounds_, rtol=1e-10)
    assert streamed.n_iter_ == 12
    # The origin of the stream is its first chunk's mean, not the data's: same fit.
    assert_same_fit(streamed, fitted, rtol=1e-8)


def test_a_memmap_and_a_generator_function_are_streams(tmp_path):
    X, _ = make_blobs(n=1000, d=2, k=2, seed=8)
    path = tmp_path / "rows.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    start = starting_values(X, 2, "diag")
    options = dict(covariance_type="diag", tol=0.0, chunk_size=128, **start)
    fitted = GaussianMixture(2, max_iter=6, **options).fit(X)
    from_memmap = GaussianMixture(2, **options).fit_chunks(mapped, n_passes=7, update="batch")
    from_generator = GaussianMixture(2, **options).fit_chunks(
        lambda: (mapped[i : i + 300] for i in range(0, 1000, 300)), n_passes=7, update="batch")
    assert_allclose(from_memmap.lower_bounds_, fitted.lower_bounds_, rtol=1e-10)
    assert_allclose(from_generator.lower_bounds_, fitted.lower_bounds_, rtol=1e-10)


def test_an_iterator_is_read_once():
    X, _ = make_blobs(n=400, d=2, k=2, seed=9)
    model = GaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match="reads the chunks more than once"):
        model.fit_chunks(iter(chunks_of(X, 100)), n_passes=3, update="incremental")
    model.fit_chunks(iter(chunks_of(X, 100)))
    assert model.n_steps_ == 4
    with pytest.raises(ValueError, match="can be read once"):
        GaussianMixture(2, random_state=0).fit_chunks(iter(chunks_of(X, 100)), n_passes=2)
    with pytest.raises(ValueError, match="update must be"):
        model.fit_chunks(chunks_of(X, 100), update="sideways")


def test_chunks_are_validated():
    X, _ = make_blobs(n=300, d=3, k=2, seed=10)
    model = GaussianMixture(2, random_state=0).fit_chunks(chunks_of(X, 100))
    with pytest.raises(ValueError, match="X has 2 features"):
        model.partial_fit(X[:, :2])
    bad = X.copy()
    bad[150, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 50, column 1"):
        GaussianMixture(2, random_state=0).fit_chunks(chunks_of(bad, 100), n_passes=2,
                                                      update="batch")


def test_a_stream_is_summed_in_chunk_order_whatever_the_threads():
    X, _ = make_blobs(n=5000, d=3, k=3, seed=11)
    start = starting_values(X, 3, "full")
    params = GaussianMixture(3, max_iter=0, **start).fit(X)._fitted_params(None)
    model = Mixture(Gaussian("full"), 3)
    one = Stream(chunks_of(X, 250), n_jobs=1).expectation(model, params)
    three = Stream(chunks_of(X, 250), n_jobs=3).expectation(model, params)
    in_memory = InMemory(X, chunk_size=250).expectation(model, params)
    assert one.log_likelihood == three.log_likelihood == in_memory.log_likelihood
    assert_allclose(three.stats.components.sum_xx, in_memory.stats.components.sum_xx,
                    rtol=0, atol=0)
    assert_allclose(Stream(chunks_of(X, 250)).mean(), X.mean(axis=0), rtol=1e-12)


def test_online_em_state_continues_across_updates():
    X, _ = make_blobs(n=400, d=2, k=2, seed=12)
    start = starting_values(X, 2, "spherical")
    params = GaussianMixture(2, covariance_type="spherical", max_iter=0,
                             **start).fit(X)._fitted_params(None)
    model = Mixture(Gaussian("spherical"), 2)
    state = OnlineEM(model, decay=0.6, offset=0.0)
    data = InMemory(X, chunk_size=100)
    after_one = state.run(data, params)
    assert state.n_steps == 4
    assert_allclose(state.stats.resp_sum.sum(), 1.0, rtol=1e-12)
    state.run(data, after_one, n_passes=2)
    assert state.n_steps == 12
    # The same steps by hand: one E-step per chunk at the latest parameters.
    manual = OnlineEM(model, decay=0.6, offset=0.0)
    current = params
    for start in range(0, len(X), 100):
        batch = InMemory(X[start : start + 100]).expectation(model, current)
        current = manual.update(current, batch.stats, batch.total_weight)
    assert_allclose(current.components.means, after_one.components.means, rtol=1e-12)


def test_partial_fit_takes_tensors():
    torch = pytest.importorskip("torch")
    X, _ = make_blobs(n=300, d=2, k=2, seed=13)
    start = starting_values(X, 2, "full")
    on_numpy = GaussianMixture(2, **start).partial_fit(X[:150]).partial_fit(X[150:])
    on_torch = GaussianMixture(2, **start)
    on_torch.partial_fit(torch.from_numpy(X[:150])).partial_fit(torch.from_numpy(X[150:]))
    assert isinstance(on_torch.means_, torch.Tensor)
    assert_allclose(on_torch.means_.numpy(), on_numpy.means_, rtol=1e-10)


def test_online_em_weighs_priors_as_fit_does_on_the_rows_seen():
    """Pseudo-counts and the Dirichlet prior on the weights act on statistics at the scale
    of the rows seen: one step from the start is one EM iteration of fit, a prior's pull
    does not grow as the stream normalises its statistics."""
    rng = np.random.default_rng(3)
    prototypes = rng.uniform(0.1, 0.9, size=(2, 12))
    X = (rng.random((600, 12)) < prototypes[rng.integers(0, 2, 600)]).astype(float)
    options = dict(alpha=3.0, weight_concentration=4.0, random_state=0)
    online = BernoulliMixture(2, **options).partial_fit(X)
    fitted = BernoulliMixture(2, max_iter=1, tol=0.0, **options).fit(X)
    assert_allclose(online.means_, fitted.means_, rtol=1e-12)
    assert_allclose(online.weights_, fitted.weights_, rtol=1e-12)
