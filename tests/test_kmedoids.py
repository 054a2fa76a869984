"""KMedoids: optimality of PAM, chunked versus precomputed dissimilarities, errors."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import pairwise_distances
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit.models import kmedoids as kmedoids_module
from emkit.models.kmedoids import KMedoids


def make_blobs(n=300, d=2, k=4, seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def brute_force_optimum(D, k):
    return min(D[:, list(c)].min(axis=1).sum() for c in itertools.combinations(range(len(D)), k))


@pytest.mark.parametrize("seed", range(4))
def test_pam_reaches_the_optimum_on_tiny_data(seed):
    X = make_blobs(n=13, k=3, seed=seed, spread=1.5)
    optimum = brute_force_optimum(pairwise_distances(X), 3)
    for init in ("build", "random", "k-medoids++"):
        model = KMedoids(3, method="pam", init=init, random_state=seed).fit(X)
        np.testing.assert_allclose(model.inertia_, optimum, rtol=1e-12)


def test_pam_matches_the_kmedoids_package():
    kmedoids = pytest.importorskip("kmedoids")
    for seed in range(3):
        X = make_blobs(n=200, d=3, k=5, seed=seed, spread=10.0)
        reference = kmedoids.fasterpam(pairwise_distances(X), 5, random_state=0)
        ours = KMedoids(5, method="pam", random_state=0).fit(X)
        np.testing.assert_allclose(ours.inertia_, reference.loss, rtol=1e-10)
    for seed in range(3):
        X = make_blobs(n=200, d=3, k=5, seed=seed, spread=2.0)
        reference = kmedoids.fasterpam(pairwise_distances(X), 5, init="build")
        ours = KMedoids(5, method="pam", init="build").fit(X)
        assert ours.inertia_ <= reference.loss * (1 + 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_pam_makes_the_swaps_of_fasterpam_from_the_same_start(seed):
    kmedoids = pytest.importorskip("kmedoids")
    X = make_blobs(n=400, d=3, k=6, seed=seed, spread=3.0)
    start = np.random.default_rng(seed).choice(len(X), 6, replace=False)
    reference = kmedoids.fasterpam(pairwise_distances(X), start.copy(), n_cpu=1)
    ours = KMedoids(6, method="pam", init=start).fit(X)
    np.testing.assert_array_equal(ours.medoid_indices_, reference.medoids)
    np.testing.assert_allclose(ours.inertia_, reference.loss, rtol=1e-12)
    assert ours.n_iter_ == reference.n_iter


def test_changes_are_the_differences_of_the_objective():
    X = make_blobs(n=90, d=2, k=4, seed=3)
    X[5] = X[0]
    D = pairwise_distances(X, metric="manhattan")
    medoids = np.array([0, 5, 40, 60, 80])
    state = kmedoids_module._SwapState(D[:, medoids])
    assert np.bincount(state.nearest, minlength=5)[1] == 0  # point 5 goes to medoid 0
    block = D[:, state.order]
    changes = state.changes(block, np.empty_like(block))
    objective = D[:, medoids].min(axis=1).sum()
    assert state.total == pytest.approx(objective, rel=1e-14)
    for candidate in range(len(X)):
        for k in range(len(medoids)):
            swapped = medoids.copy()
            swapped[k] = candidate
            expected = D[:, swapped].min(axis=1).sum() - objective
            assert changes[candidate, k] == pytest.approx(expected, abs=1e-10)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_caches_updated_swap_by_swap_equal_a_rebuild(data):
    n = data.draw(st.integers(1, 25), label="n")
    k = data.draw(st.integers(1, 5), label="k")
    # Small integer dissimilarities: ties between medoids everywhere.
    values = st.lists(st.integers(0, 3), min_size=n, max_size=n)
    to_medoids = np.array([data.draw(values) for _ in range(k)], dtype=float).T
    state = kmedoids_module._SwapState(to_medoids.copy())
    for _ in range(data.draw(st.integers(1, 4), label="swaps")):
        medoid = data.draw(st.integers(0, k - 1), label="medoid")
        column = np.array(data.draw(values), dtype=float)
        state.replace(medoid, column[state.order])
        to_medoids[:, medoid] = column
        rebuilt = kmedoids_module._SwapState(to_medoids.copy())
        for name in ("nearest", "nearest_distance", "runner_up", "second_distance", "order",
                     "starts", "segments", "first", "second", "to_medoids"):
            np.testing.assert_array_equal(getattr(state, name), getattr(rebuilt, name),
                                          err_msg=name)
        assert state.total == rebuilt.total


def test_every_swap_lowers_the_objective(monkeypatch):
    totals = []
    original = kmedoids_module._SwapState.replace

    def recording(self, k, block_row):
        original(self, k, block_row)
        totals.append(self.total)

    monkeypatch.setattr(kmedoids_module._SwapState, "replace", recording)
    X = make_blobs(n=300, k=5, seed=4, spread=2.0)
    start = np.random.default_rng(4).choice(len(X), 5, replace=False)
    model = KMedoids(5, method="pam", init=start).fit(X)
    initial = pairwise_distances(X, X[start]).min(axis=1).sum()
    assert len(totals) >= 5
    assert np.all(np.diff([initial, *totals]) < 0)
    np.testing.assert_allclose(totals[-1], model.inertia_, rtol=1e-12)


def test_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    X = make_blobs(n=600, d=3, k=6, seed=5)
    fits = []
    for threads in (1, 3):
        monkeypatch.setattr(kmedoids_module, "available_threads", lambda threads=threads: threads)
        fits.append(KMedoids(6, method="pam", init="random", random_state=2).fit(X))
    np.testing.assert_array_equal(fits[0].medoid_indices_, fits[1].medoid_indices_)
    assert fits[0].inertia_ == fits[1].inertia_
    assert fits[0].n_iter_ == fits[1].n_iter_


def test_float32_data_give_the_medoids_of_their_float64_values():
    X = make_blobs(n=200, d=3, k=4, seed=6).astype(np.float32)
    ours = KMedoids(4, method="pam", random_state=0).fit(X)
    reference = KMedoids(4, metric="precomputed", method="pam", random_state=0)
    reference.fit(pairwise_distances(X.astype(np.float64)))
    np.testing.assert_array_equal(ours.medoid_indices_, reference.medoid_indices_)
    np.testing.assert_allclose(ours.inertia_, reference.inertia_, rtol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_pam_is_no_worse_than_alternate(seed):
    X = make_blobs(n=250, k=6, seed=seed, spread=2.0)
    start = np.random.default_rng(seed).choice(len(X), 6, replace=False)
    alternate = KMedoids(6, init=start).fit(X)
    pam = KMedoids(6, method="pam", init=start).fit(X)
    assert pam.inertia_ <= alternate.inertia_ + 1e-9


@pytest.mark.parametrize("method", ["alternate", "pam"])
@pytest.mark.parametrize("metric", ["euclidean", "l2", "sqeuclidean", "manhattan", "cosine"])
def test_chunked_dissimilarities_equal_precomputed(method, metric):
    X = make_blobs(n=180, d=3, k=4, seed=7)
    D = pairwise_distances(X, metric=metric)
    precomputed = KMedoids(4, metric="precomputed", method=method, random_state=1).fit(D)
    assert precomputed.cluster_centers_ is None
    for chunk_size in (1, 13, None):
        model = KMedoids(4, metric=metric, method=method, random_state=1,
                         chunk_size=chunk_size).fit(X)
        np.testing.assert_array_equal(model.medoid_indices_, precomputed.medoid_indices_)
        np.testing.assert_array_equal(model.labels_, precomputed.labels_)
        np.testing.assert_allclose(model.inertia_, precomputed.inertia_, rtol=1e-10)
        np.testing.assert_array_equal(model.cluster_centers_, X[model.medoid_indices_])


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_the_full_matrix_is_never_computed(monkeypatch, metric):
    X = make_blobs(n=400, k=4, seed=8)
    largest = []
    original = kmedoids_module._Dissimilarities.between

    def recording(self, rows, columns, out=None):
        block = original(self, rows, columns, out)
        largest.append(block.size)
        return block

    monkeypatch.setattr(kmedoids_module._Dissimilarities, "between", recording)
    for method, init in [("pam", "build"), ("pam", "k-medoids++"), ("alternate", "random")]:
        KMedoids(4, metric=metric, method=method, init=init, chunk_size=25,
                 random_state=0).fit(X)
    assert 25 * len(X) // 2 < max(largest) <= 25 * len(X)


def test_predict_transform_and_precomputed_queries():
    X = make_blobs(n=200, k=3, seed=9)
    model = KMedoids(3, method="pam", random_state=0).fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    distances = pairwise_distances(X, X[model.medoid_indices_])
    np.testing.assert_allclose(model.transform(X), distances)
    np.testing.assert_allclose(model.inertia_, distances.min(axis=1).sum())
    pre = KMedoids(3, metric="precomputed", method="pam", random_state=0)
    pre.fit(pairwise_distances(X))
    queries = X[:20] + 0.1
    to_training = pairwise_distances(queries, X)
    np.testing.assert_array_equal(pre.predict(to_training), model.predict(queries))
    np.testing.assert_allclose(pre.transform(to_training), model.transform(queries))


def test_other_metrics_and_parameters():
    X = make_blobs(n=120, d=3, k=3, seed=10)
    minkowski = KMedoids(3, metric="minkowski", metric_params={"p": 3}, random_state=0)
    minkowski.fit(X)
    reference = KMedoids(3, metric="precomputed", random_state=0)
    reference.fit(pairwise_distances(X, metric="minkowski", p=3))
    np.testing.assert_array_equal(minkowski.medoid_indices_, reference.medoid_indices_)

    def chebyshev(a, b):
        return np.abs(a - b).max()

    custom = KMedoids(3, metric=chebyshev, method="pam", chunk_size=30, random_state=0)
    builtin = KMedoids(3, metric="chebyshev", method="pam", random_state=0)
    np.testing.assert_allclose(custom.fit(X).inertia_, builtin.fit(X).inertia_)


def test_build_starts_from_the_most_central_point():
    X = make_blobs(n=60, k=2, seed=11)
    D = pairwise_distances(X)
    model = KMedoids(1, method="pam", init="build").fit(X)
    assert model.medoid_indices_[0] == np.argmin(D.sum(axis=1))
    assert model.n_iter_ == 1


@pytest.mark.parametrize("method", ["alternate", "pam"])
@pytest.mark.parametrize("init", ["k-medoids++", "build", "random"])
def test_duplicate_points_still_give_distinct_medoids(method, init):
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)
    model = KMedoids(3, method=method, init=init, random_state=0).fit(X)
    assert np.unique(model.medoid_indices_).size == 3
    assert model.inertia_ == 0.0


def test_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    X = make_blobs(n=100, k=3, seed=12)
    model = KMedoids(3, random_state=0).fit(torch.from_numpy(X))
    reference = KMedoids(3, random_state=0).fit(X)
    np.testing.assert_array_equal(model.medoid_indices_, reference.medoid_indices_)


def test_errors_come_before_any_work():
    X = make_blobs(n=10, k=2, seed=13)
    with pytest.raises(ValueError, match="n_clusters=11 and n_samples=10"):
        KMedoids(11).fit(X)
    with pytest.raises(ValueError, match=r"metric='nonsense'.*Unknown"):
        KMedoids(2, metric="nonsense").fit(X)
    with pytest.raises(ValueError, match="metric_params"):
        KMedoids(2, metric="minkowski", metric_params={"q": 1}).fit(X)
    with pytest.raises(ValueError, match=r"must be a square matrix.*shape \(10, 2\)"):
        KMedoids(2, metric="precomputed").fit(X)
    D = pairwise_distances(X)
    D[3, 5] = -0.5
    with pytest.raises(ValueError, match=r"non-negative; row 3, column 5 holds -0\.5"):
        KMedoids(2, metric="precomputed").fit(D)
    bad = X.copy()
    bad[6, 1] = np.nan
    with pytest.raises(ValueError, match="NaN at row 6, column 1"):
        KMedoids(2).fit(bad)
    with pytest.raises(ValueError, match="init indices must be distinct"):
        KMedoids(2, init=[1, 1]).fit(X)
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        KMedoids(2, init=[1, 10]).fit(X)
    with pytest.raises(ValueError, match="2 row indices"):
        KMedoids(2, init=[1, 2, 3]).fit(X)
    model = KMedoids(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but KMedoids is expecting 2"):
        model.predict(np.ones((2, 3)))


@parametrize_with_checks(
    [
        KMedoids(),
        KMedoids(n_clusters=3, method="pam", chunk_size=5),
        KMedoids(n_clusters=2, metric="manhattan", method="pam", init="build"),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
