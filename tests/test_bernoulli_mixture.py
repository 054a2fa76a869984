"""BernoulliMixture: Bishop's EM for binary data, with the estimator conveniences."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from sklearn.utils.estimator_checks import parametrize_with_checks

import emkit
from emkit import BernoulliMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# As tests/test_sklearn_checks.py: with more than one component the random initialisation
# draws differently on rows repeated in place of integer weights; from the same start they
# agree (test_integer_sample_weight_equals_repeated_rows).
RANDOM_INIT_WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "random initialisation draws differently on repeated rows; equivalence from fixed "
        "starting values is tested separately"
    ),
}


@parametrize_with_checks(
    [
        BernoulliMixture(binarize=0.0),
        BernoulliMixture(2, binarize=0.5, chunk_size=7),
        BernoulliMixture(3, binarize=0.0, init_params="k-means++"),
    ],
    expected_failed_checks=lambda e: RANDOM_INIT_WEIGHTS if e.n_components > 1 else {},
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def binary_data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    prototypes = np.array([
        [0.9, 0.9, 0.9, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.9, 0.9, 0.9, 0.1],
        [0.1, 0.8, 0.1, 0.1, 0.8, 0.9],
    ])
    z = rng.integers(0, 3, n)
    return (rng.random((n, 6)) < prototypes[z]).astype(float), z, prototypes


def reference_em(X, weights, means, alpha, n_iter):
    """Bishop's EM for Bernoulli mixtures (eqs. 9.56, 9.58–9.60), written out with NumPy."""
    bounds = []
    for _ in range(n_iter):
        log_joint = (
            np.log(weights) + X @ np.log(means).T + (1 - X) @ np.log1p(-means).T
        )
        resp = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        nk = resp.sum(axis=0)
        weights = nk / nk.sum()
        means = (resp.T @ X + alpha) / (nk[:, None] + 2 * alpha)
        log_joint = np.log(weights) + X @ np.log(means).T + (1 - X) @ np.log1p(-means).T
        bounds.append(logsumexp(log_joint, axis=1).mean())
    return weights, means, bounds


def test_iterates_equal_a_direct_implementation():
    X, _, prototypes = binary_data()
    weights, means = np.array([0.2, 0.3, 0.5]), np.clip(prototypes[::-1] + 0.05, 0.05, 0.95)
    model = BernoulliMixture(3, alpha=0.5, weights_init=weights, means_init=means, tol=0.0,
                             max_iter=12).fit(X)
    expected_weights, expected_means, bounds = reference_em(X, weights, means, 0.5, 12)
    assert_allclose(model.lower_bounds_, bounds, rtol=1e-12)
    assert_allclose(model.weights_, expected_weights, rtol=1e-10)
    assert_allclose(model.means_, expected_means, rtol=1e-10)


def test_recovers_the_prototypes():
    X, z, prototypes = binary_data(3000)
    model = BernoulliMixture(3, n_init=3, random_state=0).fit(X)
    order = np.argsort(model.means_[:, 0] * 10 + model.means_[:, 1])
    truth = np.argsort(prototypes[:, 0] * 10 + prototypes[:, 1])
    assert_allclose(model.means_[order], prototypes[truth], atol=0.04)
    assert model.converged_
    assert model.lower_bound_ == pytest.approx(model.score(X), rel=1e-12)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(z, model.predict(X)) > 0.8


def test_integer_sample_weight_equals_repeated_rows():
    X, _, prototypes = binary_data(300)
    weights = np.random.default_rng(1).integers(1, 4, len(X))
    start = dict(weights_init=[0.3, 0.3, 0.4], means_init=np.clip(prototypes, 0.2, 0.8),
                 tol=0.0, max_iter=10)
    weighted = BernoulliMixture(3, **start).fit(X, sample_weight=weights)
    repeated = BernoulliMixture(3, **start).fit(np.repeat(X, weights, axis=0))
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-12)
    assert_allclose(weighted.means_, repeated.means_, rtol=1e-12)


def test_values_that_are_not_binary_are_refused_by_column_and_row():
    X, _, _ = binary_data(50)
    X[7, 4] = 0.5
    with pytest.raises(ValueError, match="Bernoulli column 4 must hold 0 or 1, but row 7 holds"):
        BernoulliMixture(2).fit(X)
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X, columns=list("abcdef"))
    with pytest.raises(ValueError, match=r"Bernoulli column 'e' \(column 4\)"):
        BernoulliMixture(2).fit(frame)
    model = BernoulliMixture(2, binarize=0.25, random_state=0).fit(frame)
    assert model.feature_names_in_.tolist() == list("abcdef")
    model.predict(frame)
    fitted = BernoulliMixture(2, random_state=0).fit(np.round(X))
    with pytest.raises(ValueError, match="row 7"):
        fitted.predict(X)


def test_binarize_thresholds_and_keeps_non_finite_values():
    X = np.array([[0.2, 0.9], [0.7, 0.1], [0.5, 0.6], [0.1, 0.2]])
    model = BernoulliMixture(1, binarize=0.5, alpha=1e-12).fit(X)
    assert_allclose(model.means_, [[0.25, 0.5]])
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 2, column 1"):
        BernoulliMixture(1, binarize=0.5).fit(X)
    X[2, 1] = np.nan
    missing = BernoulliMixture(1, binarize=0.5, alpha=1e-12).fit(X)
    assert_allclose(missing.means_, [[0.25, 1 / 3]])


def test_starting_values_are_validated():
    X, _, _ = binary_data(50)
    with pytest.raises(ValueError, match=r"'means_init' should have the shape \(2, 6\)"):
        BernoulliMixture(2, means_init=np.full((3, 6), 0.5)).fit(X)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        BernoulliMixture(2, means_init=np.ones((2, 6))).fit(X)
    with pytest.raises(ValueError, match="'weights_init' should be normalized"):
        BernoulliMixture(2, weights_init=[0.5, 0.6]).fit(X)


def test_empty_component_is_reseeded():
    X, _, prototypes = binary_data(400)
    means = np.vstack([np.clip(prototypes, 0.1, 0.9), np.full(6, 0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = BernoulliMixture(4, weights_init=[0.33, 0.33, 0.34 - 1e-300, 1e-300],
                                 means_init=means, max_iter=20).fit(X)
    assert model.weights_.min() > 0
    assert np.isfinite(model.lower_bound_)


def test_sample_draws_binary_rows_per_component():
    X, _, _ = binary_data(500)
    model = BernoulliMixture(3, random_state=0).fit(X)
    draws, labels = model.sample(2000)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    for k in range(3):
        assert_allclose(draws[labels == k].mean(axis=0), model.means_[k], atol=0.1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_tensors_in_and_out(dtype):
    torch = pytest.importorskip("torch")
    X, _, _ = binary_data(600)
    tensor = torch.from_numpy(X).to(getattr(torch, dtype))
    options = dict(tol=0.0, max_iter=10, random_state=0)
    on_torch = BernoulliMixture(3, **options).fit(tensor)
    on_numpy = BernoulliMixture(3, **options).fit(X)
    assert isinstance(on_torch.means_, torch.Tensor) and on_torch.means_.dtype == torch.float64
    rtol = 1e-10 if dtype == "float64" else 1e-5
    assert_allclose(on_torch.lower_bounds_, on_numpy.lower_bounds_, rtol=rtol)
    proba = on_torch.predict_proba(tensor)
    assert proba.dtype == tensor.dtype
    assert torch.equal(on_torch.predict(tensor), torch.argmax(proba, dim=1))


def test_model_file_round_trip(tmp_path):
    X, _, _ = binary_data(300)
    model = BernoulliMixture(3, binarize=0.5, random_state=0).fit(X)
    path = model.save(tmp_path / "bernoulli.emkit")
    loaded = BernoulliMixture.load(path)
    assert loaded.get_params() == model.get_params()
    assert_allclose(loaded.means_, model.means_, rtol=0)
    assert_allclose(loaded.score_samples(X), model.score_samples(X), rtol=0)
    assert isinstance(emkit.load(path), BernoulliMixture)


def test_callbacks_see_the_means():
    X, _, _ = binary_data(200)
    seen = []
    BernoulliMixture(2, max_iter=3, tol=0.0, random_state=0,
                     callbacks=lambda info: seen.append(info.params["means_"].shape)).fit(X)
    assert seen == [(2, 6)] * 4
