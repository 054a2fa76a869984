"""KMeans and OnlineKMeans: parity with scikit-learn, backends, chunking, weights, errors."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans as SKLearnKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import euclidean_distances
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit._backend import as_backend
from emkit.models import kmeans as kmeans_module
from emkit.models.kmeans import KMeans, OnlineKMeans

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def make_blobs(n=600, d=3, k=4, seed=0, spread=3.0):
    """Rows around k random centres (overlapping a little), with their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(0, k, n)
    return centres[labels] + rng.normal(size=(n, d)), labels


def starting_centres(X, k, seed=1):
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), k, replace=False)]


def sklearn_lloyd(X, init, max_iter, sample_weight=None, tol=1e-4):
    model = SKLearnKMeans(
        init.shape[0], init=init, n_init=1, max_iter=max_iter, tol=tol, algorithm="lloyd"
    )
    return model.fit(X, sample_weight=sample_weight)


def assert_same_fit(ours, theirs, rtol=1e-10):
    scale = np.abs(theirs.cluster_centers_).max()
    np.testing.assert_allclose(
        ours.cluster_centers_, theirs.cluster_centers_, rtol=rtol, atol=rtol * scale
    )
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=rtol)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    assert ours.n_iter_ == theirs.n_iter_


# ---------------------------------------------------------------------- parity


@pytest.mark.parametrize("max_iter", range(1, 9))
def test_every_iteration_matches_sklearn_lloyd(max_iter):
    X, _ = make_blobs(n=800, d=4, k=5)
    init = starting_centres(X, 5)
    ours = KMeans(5, init=init, max_iter=max_iter).fit(X)
    assert_same_fit(ours, sklearn_lloyd(X, init, max_iter))


def test_converged_run_matches_sklearn_with_weights():
    X, _ = make_blobs(n=700, d=3, k=4, seed=3)
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(X))
    init = starting_centres(X, 6)
    for max_iter in (1, 3, 300):
        ours = KMeans(6, init=init, max_iter=max_iter, tol=0.0).fit(X, sample_weight=weights)
        theirs = sklearn_lloyd(X, init, max_iter, sample_weight=weights, tol=0.0)
        assert_same_fit(ours, theirs)
    assert ours.n_iter_ < 300


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeded_fit_matches_sklearn(init):
    X, _ = make_blobs(n=500, d=3, k=4, seed=5)
    ours = KMeans(4, init=init, n_init=3, random_state=7).fit(X)
    theirs = SKLearnKMeans(4, init=init, n_init=3, random_state=7).fit(X)
    assert_same_fit(ours, theirs)


def test_empty_cluster_is_relocated_as_in_sklearn():
    X, _ = make_blobs(n=300, d=2, k=3, seed=2)
    init = np.vstack([starting_centres(X, 3), [[100.0, 100.0], [-100.0, 90.0]]])
    for max_iter in (1, 2, 5):
        ours = KMeans(5, init=init, max_iter=max_iter).fit(X)
        assert_same_fit(ours, sklearn_lloyd(X, init, max_iter))


def test_screened_and_exact_assignments_agree_with_brute_force(monkeypatch):
    X, _ = make_blobs(n=2000, d=3, k=6, seed=4)
    centres = starting_centres(X, 37)
    expected = np.argmin(euclidean_distances(X, centres, squared=True), axis=1)
    centre = X.mean(axis=0)
    for bits in (kmeans_module.SCREEN_INDEX_BITS, 0):
        monkeypatch.setattr(kmeans_module, "SCREEN_INDEX_BITS", bits)
        with kmeans_module._Data(X, centre, None, 37, 128) as data:
            labels, _ = data.assign(centres - centre)
            moved, changed = data.assign(centres - centre + 0.05, labels)
            assert (data.single is None) == (bits == 0)
        np.testing.assert_array_equal(labels, expected)
        np.testing.assert_array_equal(changed, np.flatnonzero(moved != labels))


def test_near_ties_are_settled_in_float64():
    rng = np.random.default_rng(5)
    centres = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 50.0]])
    # On the bisector of the first two centres, exactly or within float32 resolution.
    offsets = np.r_[np.zeros(100), rng.choice([-1.0, 1.0], 100) * 10.0 ** rng.uniform(-12, -7, 100)]
    X = np.column_stack([offsets, rng.normal(size=200)])
    X = np.vstack([X, rng.normal(size=(600, 2)) * 3.0])
    expected = np.argmin(((X[:, None, :] - centres) ** 2).sum(axis=2), axis=1)
    for chunk_size in (16, None):
        with kmeans_module._Data(X, np.zeros(2), None, 3, chunk_size) as data:
            labels, _ = data.assign(centres)
        np.testing.assert_array_equal(labels, expected)
    assert (expected[:100] == 0).all()


@pytest.mark.parametrize("scale", [1e-22, 1e18])
def test_extreme_scales_fall_back_to_float64(scale):
    X, _ = make_blobs(n=500, d=3, k=4, seed=6)
    init = starting_centres(X, 4)
    ours = KMeans(4, init=init * scale, max_iter=5).fit(X * scale)
    theirs = sklearn_lloyd(X * scale, init * scale, 5)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10)


# ---------------------------------------------------------------------- invariances


def test_chunk_size_does_not_change_the_fit():
    X, _ = make_blobs(n=1000, d=5, k=4, seed=6)
    init = starting_centres(X, 4)
    reference = KMeans(4, init=init).fit(X)
    for chunk_size in (1, 7, 250, 5000):
        model = KMeans(4, init=init, chunk_size=chunk_size).fit(X)
        np.testing.assert_array_equal(model.labels_, reference.labels_)
        np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(model.inertia_, reference.inertia_, rtol=1e-12)


def test_integer_sample_weight_equals_repeated_rows():
    X, _ = make_blobs(n=200, d=3, k=3, seed=8)
    weights = np.random.default_rng(1).integers(0, 4, len(X))
    repeated = np.repeat(X, weights, axis=0)
    init = starting_centres(X[weights > 0], 3)
    weighted = KMeans(3, init=init).fit(X, sample_weight=weights)
    plain = KMeans(3, init=init).fit(repeated)
    np.testing.assert_allclose(weighted.cluster_centers_, plain.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(weighted.inertia_, plain.inertia_, rtol=1e-12)
    assert weighted.n_iter_ == plain.n_iter_
    np.testing.assert_array_equal(np.repeat(weighted.labels_, weights), plain.labels_)


def test_sums_refresh_keeps_long_runs_exact():
    X, _ = make_blobs(n=400, d=2, k=2, seed=9, spread=0.5)
    init = starting_centres(X, 9)
    for max_iter in (10, 40):
        ours = KMeans(9, init=init, max_iter=max_iter, tol=0.0).fit(X)
        assert_same_fit(ours, sklearn_lloyd(X, init, max_iter, tol=0.0), rtol=1e-9)


# ---------------------------------------------------------------------- estimator API


def test_predict_transform_score_are_consistent():
    X, _ = make_blobs(n=300, d=3, k=3, seed=10)
    model = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_allclose(
        model.transform(X), euclidean_distances(X, model.cluster_centers_), rtol=1e-9
    )
    np.testing.assert_allclose(model.score(X), -model.inertia_, rtol=1e-10)
    np.testing.assert_allclose(model.fit_transform(X), model.transform(X))
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)
    assert model.labels_.dtype == np.int32


def test_float32_stays_float32():
    X, _ = make_blobs(n=300, d=3, k=3, seed=11)
    model = KMeans(3, random_state=0).fit(X.astype(np.float32))
    assert model.cluster_centers_.dtype == np.float32
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    reference = KMeans(3, random_state=0).fit(X)
    np.testing.assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-5)


def test_feature_names_are_recorded():
    pd = pytest.importorskip("pandas")
    X, _ = make_blobs(n=100, d=2, k=2, seed=12)
    frame = pd.DataFrame(X, columns=["eruptions", "waiting"])
    model = KMeans(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, ["eruptions", "waiting"])
    assert list(model.get_feature_names_out()) == ["kmeans0", "kmeans1"]


def test_verbose_prints_the_inertia(capsys):
    X, _ = make_blobs(n=100, d=2, k=2, seed=13)
    KMeans(2, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Initialization complete" in out
    assert "Iteration 0, inertia" in out
    assert "Converged at iteration" in out


def test_explicit_centres_run_once_with_a_warning():
    X, _ = make_blobs(n=100, d=2, k=2, seed=14)
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        KMeans(2, init=X[:2], n_init=3).fit(X)


def test_duplicate_points_warn_about_distinct_clusters():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        model = KMeans(3, random_state=0).fit(X)
    assert np.isfinite(model.cluster_centers_).all()


# ---------------------------------------------------------------------- errors


def test_errors_come_before_any_work():
    X, _ = make_blobs(n=20, d=3, k=2, seed=15)
    with pytest.raises(ValueError, match="n_clusters=30 and n_samples=20"):
        KMeans(30).fit(X)
    bad = X.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN at row 4, column 2"):
        KMeans(2).fit(bad)
    with pytest.raises(ValueError, match="does not match the number of clusters 3"):
        KMeans(3, init=X[:2]).fit(X)
    with pytest.raises(ValueError, match="number of features of the data 3"):
        KMeans(2, init=X[:2, :2]).fit(X)
    with pytest.raises(ValueError, match="sample_weight must be non-negative; row 1"):
        KMeans(2).fit(X, sample_weight=np.r_[1.0, -1.0, np.ones(18)])
    model = KMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="inf at row 0, column 0"):
        model.transform(np.full((1, 3), np.inf))


# ---------------------------------------------------------------------- PyTorch


@needs_torch
def test_torch_matches_numpy_and_stays_a_tensor():
    X, _ = make_blobs(n=900, d=4, k=4, seed=16)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    for init in ("k-means++", "random"):
        ours = KMeans(4, init=init, n_init=2, random_state=3, chunk_size=100)
        ours.fit(X, sample_weight=weights)
        tensor = KMeans(4, init=init, n_init=2, random_state=3, chunk_size=100)
        tensor.fit(torch.from_numpy(X), sample_weight=torch.from_numpy(weights))
        assert isinstance(tensor.cluster_centers_, torch.Tensor)
        assert isinstance(tensor.labels_, torch.Tensor)
        np.testing.assert_allclose(tensor.cluster_centers_.numpy(), ours.cluster_centers_,
                                   rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(tensor.labels_.numpy(), ours.labels_)
        np.testing.assert_allclose(tensor.inertia_, ours.inertia_, rtol=1e-10)
        assert tensor.n_iter_ == ours.n_iter_
    queries = torch.from_numpy(X[:50])
    np.testing.assert_array_equal(tensor.predict(queries).numpy(), ours.predict(X[:50]))
    np.testing.assert_allclose(tensor.transform(queries).numpy(), ours.transform(X[:50]),
                               rtol=1e-9)
    np.testing.assert_allclose(tensor.score(queries), ours.score(X[:50]), rtol=1e-9)


@needs_torch
def test_torch_empty_cluster_and_float32():
    X, _ = make_blobs(n=300, d=2, k=3, seed=2)
    init = np.vstack([starting_centres(X, 3), [[100.0, 100.0]]])
    ours = KMeans(4, init=init, max_iter=3).fit(X)
    tensor = KMeans(4, init=torch.from_numpy(init), max_iter=3).fit(torch.from_numpy(X))
    np.testing.assert_allclose(tensor.cluster_centers_.numpy(), ours.cluster_centers_,
                               rtol=1e-10)
    single = KMeans(4, init=init).fit(torch.from_numpy(X).float())
    assert single.cluster_centers_.dtype == torch.float32
    assert single.transform(torch.from_numpy(X[:5]).float()).dtype == torch.float32


@needs_torch
@pytest.mark.parametrize(
    "array",
    [
        np.arange(3.0)[::-1][:1],
        np.arange(6.0).reshape(2, 3)[::-1][:1],
        np.arange(6.0).reshape(3, 2)[::-1][:, :1][:1],
        np.arange(6.0).reshape(2, 3)[:, ::-2],
    ],
)
def test_as_backend_accepts_negative_strides(array):
    # NumPy deems a length-1 axis contiguous whatever its (here negative) stride.
    tensor = as_backend(array, like=torch.zeros(1, dtype=torch.float64))
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_array_equal(tensor.numpy(), array)


# ---------------------------------------------------------------------- OnlineKMeans


def test_sequential_update_is_the_running_mean():
    X, _ = make_blobs(n=60, d=2, k=2, seed=17)
    init = X[:2].copy()
    # The first call starts at its own two rows, each then the first point of its cluster.
    model = OnlineKMeans(2, init=init, batch_size=1).partial_fit(X[:2])
    centres, counts = init.copy(), np.ones(2)
    for x in X[2:30]:
        model.partial_fit(x[None, :])
        k = np.argmin(((centres - x) ** 2).sum(axis=1))
        counts[k] += 1
        centres[k] += (x - centres[k]) / counts[k]
    np.testing.assert_allclose(model.cluster_centers_, centres, rtol=1e-12)
    np.testing.assert_array_equal(model.counts_, counts)
    assert model.n_steps_ == 30 and model.n_iter_ == 29


def test_power_schedule_and_callable_schedule_agree():
    X, _ = make_blobs(n=300, d=2, k=3, seed=18)
    power = OnlineKMeans(3, learning_rate="power", learning_decay=0.8, learning_offset=2.0,
                         random_state=0, max_iter=3, tol=0.0).fit(X)
    custom = OnlineKMeans(3, learning_rate=lambda n: (2.0 + n) ** -0.8, random_state=0,
                          max_iter=3, tol=0.0).fit(X)
    np.testing.assert_allclose(power.cluster_centers_, custom.cluster_centers_)
    assert power.n_iter_ == 3


def test_online_kmeans_converges_to_batch_centres_on_a_stream():
    rng = np.random.default_rng(19)
    truth = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = truth[rng.integers(0, 3, 30000)] + rng.normal(size=(30000, 2))
    batch = KMeans(3, random_state=0).fit(X)
    online = OnlineKMeans(3, batch_size=500, random_state=0)
    for start in range(0, len(X), 500):
        online.partial_fit(X[start : start + 500])
    order = np.argmin(euclidean_distances(batch.cluster_centers_, online.cluster_centers_),
                      axis=1)
    np.testing.assert_allclose(online.cluster_centers_[order], batch.cluster_centers_,
                               atol=0.05)
    fitted = OnlineKMeans(3, random_state=0).fit(X)
    assert fitted.inertia_ <= 1.001 * batch.inertia_
    assert fitted.n_steps_ == fitted.n_iter_ * 30
    assert fitted.labels_.shape == (30000,)


def test_online_kmeans_weights_and_errors():
    X, _ = make_blobs(n=200, d=2, k=2, seed=20)
    model = OnlineKMeans(2, random_state=0).fit(X, sample_weight=np.full(len(X), 2.0))
    np.testing.assert_allclose(model.counts_.sum() / model.n_iter_, 400.0)
    with pytest.raises(ValueError, match="n_clusters=5 and n_samples=3"):
        OnlineKMeans(5).partial_fit(X[:3])
    model = OnlineKMeans(2, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.partial_fit(np.ones((4, 3)))


@needs_torch
def test_online_kmeans_on_tensors_matches_numpy():
    X, _ = make_blobs(n=500, d=3, k=3, seed=21)
    ours = OnlineKMeans(3, batch_size=64, random_state=0, max_iter=5).fit(X)
    tensor = OnlineKMeans(3, batch_size=64, random_state=0, max_iter=5)
    tensor.fit(torch.from_numpy(X))
    np.testing.assert_allclose(tensor.cluster_centers_.numpy(), ours.cluster_centers_,
                               rtol=1e-10)
    np.testing.assert_array_equal(tensor.labels_.numpy(), ours.labels_)


# ---------------------------------------------------------------------- scikit-learn checks

# ``check_sample_weight_equivalence_on_dense_data`` fits on rows shuffled relative to the
# repeated ones. KMeans seeds in row order, so the same partition comes out with its
# clusters numbered differently (scikit-learn's KMeans fails this check for the same
# reason); integer weights equal repeated rows from the same start:
# test_integer_sample_weight_equals_repeated_rows. OnlineKMeans sees a different stream.
ROW_ORDER = {
    "check_sample_weight_equivalence_on_dense_data": (
        "seeding and the online stream depend on the order of the rows, which the check "
        "shuffles; equivalence from the same start is tested separately"
    ),
}


@parametrize_with_checks(
    [
        KMeans(),
        KMeans(n_clusters=3, init="random", chunk_size=7),
        OnlineKMeans(),
        OnlineKMeans(n_clusters=2, batch_size=5, learning_rate="power"),
    ],
    expected_failed_checks=lambda estimator: ROW_ORDER,
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------- example


def test_colour_quantisation_example(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = Path(__file__).parents[1] / "examples" / "colour_quantisation.py"
    spec = importlib.util.spec_from_file_location("colour_quantisation", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    figure = tmp_path / "figure.png"
    example.main([str(figure), "--clusters", "2"])
    assert figure.stat().st_size > 0
    assert "K =   2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        example.main([str(figure), "--clusters", "2"])
    assert "pass --force" in capsys.readouterr().err
