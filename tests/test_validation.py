"""Bad input is refused before any work, with a message naming what and where."""

import numpy as np
import pytest

from conftest import make_blobs
from emkit import GaussianMixture, VariationalGaussianMixture


@pytest.fixture
def fitted():
    X, _ = make_blobs(n=100, d=3, k=2)
    return GaussianMixture(2, random_state=0).fit(X)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_name_row_and_column(value):
    X, _ = make_blobs(n=50, d=3, k=2)
    X[17, 2] = value
    with pytest.raises(ValueError, match=r"inf at row 17, column 2"):
        GaussianMixture(2).fit(X)


def test_nan_is_refused_by_an_estimator_that_does_not_marginalise_it():
    X, _ = make_blobs(n=50, d=3, k=2)
    X[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN at row 17, column 2"):
        VariationalGaussianMixture(2).fit(X)


def test_non_finite_values_name_the_dataframe_column():
    pandas = pytest.importorskip("pandas")
    X, _ = make_blobs(n=50, d=2, k=2)
    X[4, 1] = np.inf
    frame = pandas.DataFrame(X, columns=["eruptions", "waiting"])
    with pytest.raises(ValueError, match=r"row 4, column 1 \('waiting'\)"):
        GaussianMixture(2).fit(frame)


def test_non_numeric_cell_is_named():
    X = np.array([[1.0, 2.0], [3.0, "x"], [5.0, 6.0]], dtype=object)
    with pytest.raises(ValueError, match=r"row 1, column 1: 'x'"):
        GaussianMixture(1).fit(X)


def test_non_numeric_dataframe_column_is_named():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["1", "two", "3"]})
    with pytest.raises(ValueError, match=r"column 'b' .*row 1 holds 'two'"):
        GaussianMixture(1).fit(frame)


def test_complex_data_are_refused():
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(1).fit(np.ones((5, 2)) + 1j)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.empty((0, 2)), "0 sample"),
        (np.empty((5, 0)), "0 feature"),
        (np.arange(5.0), "Expected 2D array"),
        (np.ones((1, 3)), "1 sample"),
    ],
)
def test_shapes_are_checked(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match=r"n_components=5 and n_samples=3"):
        GaussianMixture(5).fit(np.random.default_rng(0).normal(size=(3, 2)))


def test_wrong_number_of_features_at_predict(fitted):
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        fitted.predict(np.ones((4, 2)))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.r_[-1.0, np.ones(49)], "non-negative; row 0 is -1.0"),
        (np.zeros(50), "sums to zero"),
        (np.ones(49), r"shape \(50,\)"),
        (np.r_[np.nan, np.ones(49)], "sample_weight contains NaN at row 0"),
    ],
)
def test_sample_weight_is_checked(weights, message):
    X, _ = make_blobs(n=50, d=2, k=2)
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X, sample_weight=weights)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_components": 0}, "n_components"),
        ({"covariance_type": "banded"}, "covariance_type"),
        ({"reg_covar": -1.0}, "reg_covar"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": -1}, "max_iter"),
        ({"n_init": 0}, "n_init"),
        ({"init_params": "kmedians"}, "init_params"),
        ({"monotonic": "maybe"}, "monotonic"),
        ({"weights_init": [0.5, 0.6]}, "should be normalized"),
        ({"weights_init": [0.5, 0.5, 0.0]}, r"shape \(2,\)"),
        ({"means_init": np.zeros((2, 5))}, r"'means_init' should have the shape \(2, 3\)"),
        ({"precisions_init": -np.ones((2, 3, 3))}, r"precisions_init\[0\] is not positive"),
        ({"callbacks": [print, 3]}, r"callbacks\[1\] is not callable"),
    ],
)
def test_invalid_parameters_are_named(params, message):
    X, _ = make_blobs(n=50, d=3, k=2)
    with pytest.raises((ValueError, TypeError), match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


def test_predict_before_fit_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture().predict(np.ones((2, 2)))
