"""GaussianMixture: parity with scikit-learn, the EM guarantees, and the fitted model."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

from conftest import COVARIANCE_TYPES, make_blobs, starting_values
from emkit import GaussianMixture
from emkit.em import EMIteration


def fit_quietly(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kwargs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_iterates_equal_scikit_learn(covariance_type):
    X, _ = make_blobs(n=500, d=4, k=3, seed=1)
    start = starting_values(X, 3, covariance_type)
    for max_iter in (1, 2, 5, 25):
        options = dict(covariance_type=covariance_type, max_iter=max_iter, tol=0.0, **start)
        ours = fit_quietly(GaussianMixture(3, chunk_size=64, **options), X)
        theirs = fit_quietly(SKLearnGaussianMixture(3, **options), X)
        # scikit-learn's lower_bounds_[i] is the log-likelihood *before* its i-th M-step;
        # ours is after it, so ours[i] == theirs[i + 1].
        assert_allclose(ours.lower_bounds_[:-1], theirs.lower_bounds_[1:], rtol=1e-10)
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
            assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10, atol=1e-12)
        assert ours.n_iter_ == theirs.n_iter_ == max_iter


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_initialisations_start_where_scikit_learn_does(init_params):
    X, _ = make_blobs(n=400, d=2, k=3, seed=2)
    options = dict(init_params=init_params, random_state=3, max_iter=1, tol=0.0)
    ours = fit_quietly(GaussianMixture(3, **options), X)
    theirs = fit_quietly(SKLearnGaussianMixture(3, **options), X)
    assert_allclose(ours.means_, theirs.means_, rtol=1e-10)
    assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-10)


def test_lower_bound_is_for_the_returned_parameters(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert model.converged_
    assert model.lower_bound_ == model.lower_bounds_[-1]
    assert_allclose(model.score(X), model.lower_bound_, rtol=1e-12)
    assert len(model.lower_bounds_) == model.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_sample_weight_equals_repeated_rows(covariance_type):
    X, _ = make_blobs(n=120, d=3, k=2, seed=4)
    weights = np.random.default_rng(0).integers(0, 4, size=len(X))
    repeated = np.repeat(X, weights, axis=0)
    start = starting_values(repeated, 2, covariance_type)
    options = dict(covariance_type=covariance_type, max_iter=30, tol=0.0, **start)
    weighted = fit_quietly(GaussianMixture(2, **options), X, sample_weight=weights)
    plain = fit_quietly(GaussianMixture(2, **options), repeated)
    assert_allclose(weighted.lower_bounds_, plain.lower_bounds_, rtol=1e-11)
    assert_allclose(weighted.means_, plain.means_, rtol=1e-10)
    assert_allclose(weighted.covariances_, plain.covariances_, rtol=1e-10)


@pytest.mark.parametrize(
    ("offset", "dtype", "rtol"), [(1e8, np.float64, 1e-6), (1e4, np.float32, 1e-3)]
)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_far_from_the_origin_fit_as_well_as_centred_data(
    offset, dtype, rtol, covariance_type
):
    X, _ = make_blobs(n=600, d=3, k=3, seed=5)
    shifted_X = (X + offset).astype(dtype)
    # The same numbers, moved back to the origin exactly (in float64): any difference
    # between the two fits comes from the algorithm, not from rounding the data.
    centred_X = shifted_X.astype(np.float64) - offset
    start = starting_values(centred_X, 3, covariance_type)
    options = dict(covariance_type=covariance_type, max_iter=20, tol=0.0)
    centred = fit_quietly(GaussianMixture(3, **options, **start), centred_X)
    shifted_start = dict(start, means_init=start["means_init"] + offset)
    shifted = fit_quietly(GaussianMixture(3, **options, **shifted_start), shifted_X)
    scale = np.abs(centred.covariances_).max()
    assert_allclose(shifted.covariances_, centred.covariances_, rtol=rtol, atol=rtol * scale)
    assert_allclose(shifted.means_ - offset, centred.means_, atol=rtol * np.sqrt(scale))
    assert_allclose(shifted.lower_bound_, centred.lower_bound_, rtol=rtol)


def test_empty_component_is_reseeded():
    X, _ = make_blobs(n=300, d=2, k=2, seed=6)
    means = np.array([X[0], X[1], [1e4, 1e4]])
    model = GaussianMixture(
        3, means_init=means, covariance_type="diag", max_iter=50, random_state=0
    ).fit(X)
    # The third component started where no data are; it is moved onto the worst-explained
    # row and takes part again, instead of staying dead with weight ~1e-300.
    assert (model.weights_ > 1e-3).all()
    assert (model.means_ >= X.min(axis=0)).all() and (model.means_ <= X.max(axis=0)).all()
    assert model.predict_proba(X)[:, 2].max() > 0.1


def test_singular_covariance_names_the_component_and_the_remedies():
    X = np.vstack([np.zeros((20, 2)), np.random.default_rng(0).normal(size=(20, 2)) + 10])
    means = np.array([[0.0, 0.0], [10.0, 10.0]])
    model = GaussianMixture(2, reg_covar=0.0, means_init=means, max_iter=5)
    with pytest.raises(ValueError, match=r"component \d .*reg_covar"):
        model.fit(X)


def test_not_converging_warns_and_says_so():
    X, _ = make_blobs(n=300, seed=7)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        model = GaussianMixture(3, max_iter=2, tol=0.0, random_state=0).fit(X)
    assert not model.converged_
    assert model.n_iter_ == 2


def test_more_initialisations_never_do_worse(blobs):
    X, _ = blobs
    one = GaussianMixture(4, n_init=1, init_params="random", random_state=0).fit(X)
    five = GaussianMixture(4, n_init=5, init_params="random", random_state=0).fit(X)
    assert five.lower_bound_ >= one.lower_bound_


def test_warm_start_continues_where_the_last_fit_stopped(blobs):
    X, _ = blobs
    start = starting_values(X, 3, "full")
    whole = fit_quietly(GaussianMixture(3, max_iter=10, tol=0.0, **start), X)
    model = GaussianMixture(3, max_iter=4, tol=0.0, warm_start=True, **start)
    fit_quietly(model, X)
    first = list(model.lower_bounds_)
    model.set_params(max_iter=6)
    fit_quietly(model, X)
    assert_allclose(first + model.lower_bounds_, whole.lower_bounds_, rtol=1e-12)
    assert_allclose(model.means_, whole.means_, rtol=1e-10)


def test_callbacks_see_every_iteration_and_can_stop(blobs):
    X, _ = blobs
    seen: list[EMIteration] = []
    model = GaussianMixture(3, random_state=0, tol=0.0, max_iter=8, callbacks=seen.append)
    fit_quietly(model, X)
    assert [info.iteration for info in seen] == list(range(9))
    assert_allclose([info.lower_bound for info in seen[1:]], model.lower_bounds_)
    assert_allclose(seen[-1].params["means_"], model.means_)

    def stop_at_three(info):
        return info.iteration == 3

    model = GaussianMixture(3, random_state=0, tol=0.0, max_iter=8, callbacks=[stop_at_three])
    fit_quietly(model, X)
    assert model.n_iter_ == 3


def test_prediction_methods_agree(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(model.predict(X), proba.argmax(axis=1))
    assert_array_equal(
        GaussianMixture(3, random_state=0).fit_predict(X), model.predict(X)
    )
    theirs = SKLearnGaussianMixture(3).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(theirs, name, getattr(model, name))
    assert_allclose(model.score_samples(X), theirs.score_samples(X), rtol=1e-12)
    assert_allclose(model.bic(X), theirs.bic(X), rtol=1e-12)
    assert_allclose(model.aic(X), theirs.aic(X), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_draws_as_scikit_learn(covariance_type, blobs):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = SKLearnGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    theirs.fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(theirs, name, getattr(model, name))
    ours_X, ours_y = model.sample(50)
    their_X, their_y = theirs.sample(50)
    assert_array_equal(ours_y, their_y)
    assert_allclose(ours_X, their_X, rtol=1e-12)
    with pytest.raises(ValueError, match="at least one sample"):
        model.sample(0)


def test_float32_data_keep_their_dtype_in_outputs(blobs):
    X, _ = blobs
    model64 = GaussianMixture(3, random_state=0).fit(X)
    model32 = GaussianMixture(3, random_state=0).fit(X.astype(np.float32))
    assert model32.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert model32.means_.dtype == np.float64
    assert_allclose(model32.lower_bound_, model64.lower_bound_, rtol=1e-5)
    assert_allclose(model32.means_, model64.means_, rtol=1e-4, atol=1e-4)


def test_dataframe_feature_names_are_recorded():
    pandas = pytest.importorskip("pandas")
    X, _ = make_blobs(n=200, d=2, k=2)
    frame = pandas.DataFrame(X, columns=["eruptions", "waiting"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    assert_array_equal(model.feature_names_in_, ["eruptions", "waiting"])
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"waiting": "wait"}))
