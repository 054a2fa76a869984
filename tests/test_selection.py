"""Choosing the number of components and the covariance type."""

import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from emkit import GaussianMixture
from emkit.selection import (
    COVARIANCE_TYPES,
    GaussianMixtureSelection,
    n_parameters,
    select_gaussian_mixture,
)


def _blobs(k=3, n_per=80, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])[:k]
    return np.vstack([c + rng.normal(size=(n_per, 2)) for c in centres])


@pytest.fixture(scope="module")
def result():
    return select_gaussian_mixture(_blobs(), n_components=range(1, 6), random_state=0)


def test_picks_the_true_number_of_components(result):
    assert isinstance(result, GaussianMixtureSelection)
    assert result.best_params_["n_components"] == 3
    assert result.best_estimator_.n_components == 3
    assert len(result.results_) == 5 * len(COVARIANCE_TYPES)


@pytest.mark.parametrize("criterion", ["aic", "icl"])
@pytest.mark.parametrize("k", [2, 4])
def test_other_criteria_and_numbers(criterion, k):
    result = select_gaussian_mixture(
        _blobs(k, seed=k),
        n_components=range(1, k + 3),
        covariance_types=["spherical", "full"],
        criterion=criterion,
        random_state=0,
    )
    assert result.best_params_["n_components"] == k
    assert result.criterion == criterion


def test_best_minimises_the_criterion(result):
    best = result.results_[result.best_index_]
    assert best["bic"] == min(row["bic"] for row in result.results_)
    assert result.best_estimator_.covariance_type == best["covariance_type"]


def test_rows_are_consistent(result):
    X = _blobs()
    n = X.shape[0]
    for row in result.results_:
        assert set(row) == {
            "n_components",
            "covariance_type",
            "bic",
            "aic",
            "icl",
            "log_likelihood",
            "n_parameters",
            "converged",
            "n_iter",
        }
        p = row["n_parameters"]
        assert row["bic"] == pytest.approx(-2 * row["log_likelihood"] + p * np.log(n))
        assert row["aic"] == pytest.approx(-2 * row["log_likelihood"] + 2 * p)
        assert row["icl"] >= row["bic"] - 1e-9
        assert isinstance(row["converged"], bool)
    one = [row for row in result.results_ if row["n_components"] == 1]
    assert all(row["icl"] == row["bic"] for row in one)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_n_parameters_matches_the_estimator(covariance_type):
    X = np.random.default_rng(1).normal(size=(60, 3))
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    p = (model.bic(X) + 2 * model.score(X) * 60) / np.log(60)
    assert n_parameters(3, 3, covariance_type) == pytest.approx(p)


def test_table_forms(result):
    rows = result.table(as_frame=False)
    assert isinstance(rows, list) and rows[0]["n_components"] == 1
    rows[0]["bic"] = 0.0
    assert result.results_[0]["bic"] != 0.0
    pd = pytest.importorskip("pandas")
    frame = result.table()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:4]) == ["n_components", "covariance_type", "bic", "aic"]
    assert len(frame) == len(result.results_)


def test_table_without_pandas(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    assert isinstance(result.table(), list)
    with pytest.raises(ImportError, match="pandas"):
        result.table(as_frame=True)


def test_text_marks_the_best(result):
    lines = result.to_text().splitlines()
    assert len(lines) == 1 + len(result.results_)
    assert lines[1 + result.best_index_].startswith("*")
    assert "GaussianMixtureSelection" in repr(result)


def test_fit_params_and_callback():
    seen = []
    result = select_gaussian_mixture(
        _blobs(),
        n_components=[2, 3],
        covariance_types="diag",
        random_state=0,
        callback=seen.append,
        max_iter=200,
        n_init=2,
        reg_covar=1e-4,
    )
    assert [row["n_components"] for row in seen] == [2, 3]
    assert result.best_estimator_.n_init == 2
    assert result.best_estimator_.reg_covar == 1e-4


def test_non_converged_models_are_reported_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = select_gaussian_mixture(
            _blobs(),
            n_components=[3, 4],
            covariance_types=["full"],
            random_state=0,
            max_iter=1,
            tol=1e-12,
            init_params="random_from_data",
        )
    messages = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1
    assert "K=3 full" in str(messages[0].message)
    assert not any(row["converged"] for row in result.results_)


def test_reproducible():
    X = _blobs()
    a = select_gaussian_mixture(X, n_components=[2, 3], covariance_types=["full"], random_state=3)
    b = select_gaussian_mixture(X, n_components=[2, 3], covariance_types=["full"], random_state=3)
    assert a.results_ == b.results_


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"criterion": "bix"}, "criterion must be one of"),
        ({"covariance_types": ["full", "round"]}, "covariance_types must be among"),
        ({"covariance_types": []}, "covariance_types is empty"),
        ({"n_components": [0, 1]}, "positive integers"),
        ({"n_components": [1.5]}, "positive integers"),
        ({"n_components": []}, "n_components is empty"),
        ({"n_components": 500}, "more than the number of samples"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_gaussian_mixture(_blobs(), **kwargs)


def test_n_parameters_rejects_unknown_type():
    with pytest.raises(ValueError, match="covariance_type"):
        n_parameters(2, 2, "round")
