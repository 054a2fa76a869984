"""Model files: exact round trips, refusal of damaged, foreign and future files."""

import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

import emkit
import emkit.io
from emkit import GaussianMixture
from emkit.io import FORMAT_VERSION, SaveLoadMixin, load, read_metadata, save

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(-3, 1, (40, 2)), rng.normal(3, 0.5, (40, 2))])


@pytest.fixture(scope="module")
def fitted():
    X = _data()
    return X, {
        kind: GaussianMixture(2, covariance_type=kind, random_state=0).fit(X)
        for kind in COVARIANCE_TYPES
    }


class Recorder(SaveLoadMixin, BaseEstimator):
    """A small estimator with one fitted attribute of every supported kind."""

    def __init__(self, alpha=1.0, name="x", flag=True, nothing=None, sizes=(1, 2)):
        self.alpha = alpha
        self.name = name
        self.flag = flag
        self.nothing = nothing
        self.sizes = sizes

    def fit(self, X=None):
        self.float32_ = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
        self.int32_ = np.arange(5, dtype=np.int32)
        self.bool_array_ = np.array([True, False])
        self.empty_ = np.empty((0, 3))
        self.fortran_ = np.asfortranarray(np.arange(6.0).reshape(2, 3))
        self.names_ = np.array(["a", "b"], dtype=object)
        self.unicode_ = np.array(["x", "yz"])
        self.scalar64_ = np.float64(-0.1)
        self.scalar32_ = np.float32(0.3)
        self.count_ = 3
        self.ratio_ = 1 / 3
        self.infinite_ = -np.inf
        self.done_ = False
        self.label_ = "done"
        self.missing_ = None
        self.history_ = [np.float64(0.1), np.float64(0.2)]
        self.plain_list_ = [1, 2.5, 3]
        self.pair_ = (1, 2)
        self._private_ = "not saved"
        return self


@pytest.fixture
def recorder_class(monkeypatch):
    """``Recorder`` registered inside the emkit package, where model files may point."""
    monkeypatch.setattr(Recorder, "__module__", "emkit.io")
    monkeypatch.setattr(emkit.io, "Recorder", Recorder, raising=False)
    return Recorder


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_round_trip_is_exact(fitted, tmp_path, kind):
    X, models = fitted
    model = models[kind]
    path = save(model, tmp_path / "m.emkit")
    loaded = load(path)
    assert type(loaded) is GaussianMixture
    assert loaded.get_params() == model.get_params()
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        original, restored = getattr(model, name), getattr(loaded, name)
        assert restored.dtype == original.dtype
        assert restored.shape == original.shape
        assert restored.tobytes() == original.tobytes()
    assert loaded.converged_ is model.converged_
    assert loaded.n_iter_ == model.n_iter_
    assert loaded.lower_bound_ == model.lower_bound_
    assert loaded.lower_bounds_ == model.lower_bounds_
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.score(X) == model.score(X)


def test_emkit_load_is_io_load(fitted, tmp_path):
    _, models = fitted
    path = save(models["full"], tmp_path / "m.emkit")
    assert emkit.load is load
    assert emkit.load(path).n_components == 2


def test_feature_names_survive(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_data(), columns=["eruptions", "waiting"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    loaded = load(save(model, tmp_path / "m.emkit"))
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["eruptions", "waiting"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_every_attribute_kind_round_trips(recorder_class, tmp_path):
    model = recorder_class(alpha=np.float32(2.5), sizes=(3, 4)).fit()
    loaded = load(save(model, tmp_path / "r.emkit"))
    assert type(loaded) is recorder_class
    assert loaded.get_params() == model.get_params()
    assert type(loaded.alpha) is np.float32
    assert isinstance(loaded.sizes, tuple)
    for name in ("float32_", "int32_", "bool_array_", "empty_", "fortran_", "unicode_"):
        original, restored = getattr(model, name), getattr(loaded, name)
        assert restored.dtype == original.dtype and restored.shape == original.shape
        np.testing.assert_array_equal(restored, original)
    assert loaded.names_.dtype == object and list(loaded.names_) == ["a", "b"]
    assert type(loaded.scalar64_) is np.float64 and loaded.scalar64_ == model.scalar64_
    assert type(loaded.scalar32_) is np.float32 and loaded.scalar32_ == model.scalar32_
    assert loaded.count_ == 3 and type(loaded.count_) is int
    assert loaded.ratio_ == 1 / 3
    assert loaded.infinite_ == -np.inf
    assert loaded.done_ is False
    assert loaded.label_ == "done"
    assert loaded.missing_ is None
    assert loaded.history_ == model.history_
    assert all(type(value) is np.float64 for value in loaded.history_)
    assert loaded.plain_list_ == [1, 2.5, 3]
    assert loaded.pair_ == (1, 2)
    assert not hasattr(loaded, "_private_")


def test_mixin_save_and_load(recorder_class, tmp_path):
    model = recorder_class().fit()
    path = model.save(tmp_path / "r.emkit")
    assert recorder_class.load(path).label_ == "done"
    with pytest.raises(FileExistsError):
        model.save(path)
    model.save(path, overwrite=True)


def test_mixin_load_checks_the_class(recorder_class, fitted, tmp_path):
    path = save(fitted[1]["full"], tmp_path / "m.emkit")
    with pytest.raises(ValueError, match="holds a GaussianMixture, not a Recorder"):
        recorder_class.load(path)


def test_unsaveable_parameters_are_dropped_with_a_warning(fitted, tmp_path):
    model = GaussianMixture(2, random_state=np.random.RandomState(0), callbacks=[print])
    model.fit(fitted[0])
    with pytest.warns(UserWarning, match="callbacks, random_state"):
        path = save(model, tmp_path / "m.emkit")
    loaded = load(path)
    assert loaded.callbacks is None and loaded.random_state is None
    assert read_metadata(path)["unsaved_params"] == ["callbacks", "random_state"]


def test_tensors_are_saved_as_arrays(tmp_path):
    torch = pytest.importorskip("torch")
    X = torch.tensor(_data())
    model = GaussianMixture(2, random_state=0).fit(X)
    loaded = load(save(model, tmp_path / "m.emkit"))
    assert isinstance(loaded.means_, np.ndarray)
    np.testing.assert_array_equal(loaded.means_, model.means_.numpy())


def test_unfitted_estimator_round_trips(tmp_path):
    loaded = load(save(GaussianMixture(4, covariance_type="diag"), tmp_path / "m.emkit"))
    assert loaded.n_components == 4 and loaded.covariance_type == "diag"
    assert not hasattr(loaded, "means_")


def test_existing_file_is_kept_unless_overwrite(fitted, tmp_path):
    path = tmp_path / "m.emkit"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        save(fitted[1]["full"], path)
    assert path.read_bytes() == b"precious"
    save(fitted[1]["full"], path, overwrite=True)
    assert load(path).n_components == 2
    assert os.listdir(tmp_path) == ["m.emkit"]


def test_failed_save_leaves_nothing_behind(recorder_class, tmp_path):
    model = recorder_class().fit()
    model.bad_ = object()
    with pytest.raises(TypeError, match="bad_"):
        save(model, tmp_path / "r.emkit")
    assert os.listdir(tmp_path) == []


def test_missing_folder(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(fitted[1]["full"], tmp_path / "nowhere" / "m.emkit")


def test_refuses_estimators_outside_emkit(tmp_path):
    model = SKLearnGaussianMixture(2).fit(_data())
    with pytest.raises(ValueError, match="not part of the 'emkit' package"):
        save(model, tmp_path / "m.emkit")
    assert not (tmp_path / "m.emkit").exists()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "absent.emkit")


def test_not_a_zip(tmp_path):
    path = tmp_path / "m.emkit"
    path.write_text("eruptions,waiting\n3.6,79\n")
    with pytest.raises(ValueError, match="not an emkit model file"):
        load(path)


def test_zip_without_metadata(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match=r"no metadata\.json"):
        load(path)


def _rewrite(source, target, replace):
    """Copy the ZIP ``source`` to ``target``, passing each member through ``replace``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, replace(name, old.read(name)))


def _edit_metadata(source, target, edit):
    def replace(name, data):
        if name != "metadata.json":
            return data
        metadata = json.loads(data)
        edit(metadata)
        return json.dumps(metadata)

    _rewrite(source, target, replace)


@pytest.fixture
def model_file(fitted, tmp_path):
    return save(fitted[1]["full"], tmp_path / "good.emkit")


def test_truncated_file(model_file, tmp_path):
    data = model_file.read_bytes()
    for size in (len(data) // 2, len(data) - 10, 30):
        path = tmp_path / f"cut{size}.emkit"
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match=r"not an emkit model file|damaged"):
            load(path)


def test_corrupted_bytes(model_file, tmp_path):
    data = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as archive:
        info = archive.getinfo("arrays/attributes.means_.npy")
    header = info.header_offset
    name_length = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(data[header + 28 : header + 30], "little")
    start = header + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    path = tmp_path / "flipped.emkit"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        load(path)


def test_tampered_array_fails_its_checksum(model_file, tmp_path):
    def replace(name, data):
        if name != "arrays/attributes.weights_.npy":
            return data
        array = np.lib.format.read_array(io.BytesIO(data))
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array[::-1].copy())
        return buffer.getvalue()

    path = tmp_path / "tampered.emkit"
    _rewrite(model_file, path, replace)
    with pytest.raises(ValueError, match=r"checksum of array arrays/attributes\.weights_\.npy"):
        load(path)


def test_array_with_another_shape(model_file, tmp_path):
    def replace(name, data):
        if name != "arrays/attributes.weights_.npy":
            return data
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.ones(3))
        return buffer.getvalue()

    path = tmp_path / "tampered.emkit"
    _rewrite(model_file, path, replace)
    with pytest.raises(ValueError, match="tampered"):
        load(path)


def test_extra_member_is_refused(model_file, tmp_path):
    path = tmp_path / "extra.emkit"
    _rewrite(model_file, path, lambda name, data: data)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("arrays/extra.npy", b"")
    with pytest.raises(ValueError, match="do not match the metadata"):
        load(path)


def test_pickled_array_is_never_unpickled(model_file, tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    def replace(name, data):
        if name != "arrays/attributes.weights_.npy":
            return data
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([Boom()], dtype=object), allow_pickle=True)
        return buffer.getvalue()

    path = tmp_path / "pickle.emkit"
    _rewrite(model_file, path, replace)
    with pytest.raises(ValueError, match="cannot be read"):
        load(path)


def test_future_format_version(model_file, tmp_path):
    path = tmp_path / "future.emkit"
    _edit_metadata(model_file, path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=f"version {FORMAT_VERSION + 1}.*Upgrade emkit"):
        load(path)
    with pytest.raises(ValueError, match="Upgrade emkit"):
        read_metadata(path)


def test_other_format_name(model_file, tmp_path):
    path = tmp_path / "other.emkit"
    _edit_metadata(model_file, path, lambda m: m.update(format="something-else"))
    with pytest.raises(ValueError, match="not an emkit model file"):
        load(path)


def test_invalid_json(model_file, tmp_path):
    path = tmp_path / "json.emkit"
    _rewrite(model_file, path, lambda n, d: b"{not json" if n == "metadata.json" else d)
    with pytest.raises(ValueError, match="not valid JSON"):
        load(path)


@pytest.mark.parametrize(
    "estimator",
    [
        "sklearn.mixture.GaussianMixture",
        "os.system",
        "emkitx.Model",
        "emkit.io.Path",
        "emkit.io.SaveLoadMixin",
        "emkit.models.nothing_here.Model",
        "emkit.io.np.ndarray",
    ],
)
def test_class_outside_emkit_or_not_an_estimator(model_file, tmp_path, estimator):
    path = tmp_path / "foreign.emkit"
    _edit_metadata(model_file, path, lambda m: m.update(estimator=estimator))
    with pytest.raises(ValueError, match="emkit"):
        load(path)


def test_unknown_parameter(model_file, tmp_path):
    def edit(metadata):
        metadata["params"]["shoe_size"] = {"kind": "json", "value": 42}

    path = tmp_path / "param.emkit"
    _edit_metadata(model_file, path, edit)
    with pytest.raises(ValueError, match="does not accept"):
        load(path)


def test_private_attribute_name_is_refused(model_file, tmp_path):
    def edit(metadata):
        metadata["attributes"]["__class__"] = {"kind": "json", "value": "x"}

    path = tmp_path / "attr.emkit"
    _edit_metadata(model_file, path, edit)
    with pytest.raises(ValueError, match="invalid attribute name"):
        load(path)


def test_metadata_describes_the_file(model_file):
    metadata = read_metadata(model_file)
    assert metadata["format"] == "emkit-model"
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["emkit_version"] == emkit.__version__
    assert metadata["estimator"] == "emkit.models.gaussian_mixture.GaussianMixture"
    assert metadata["params"]["n_components"] == {"kind": "json", "value": 2}
    means = metadata["arrays"]["arrays/attributes.means_.npy"]
    assert means["dtype"] == "<f8" and means["shape"] == [2, 2] and len(means["sha256"]) == 64


def test_array_and_nested_list_parameters(tmp_path):
    model = GaussianMixture(
        2, means_init=[[-3.0, -3.0], [3.0, 3.0]], weights_init=np.array([0.25, 0.75])
    ).fit(_data())
    loaded = load(save(model, tmp_path / "m.emkit"))
    assert loaded.means_init == [[-3.0, -3.0], [3.0, 3.0]]
    assert loaded.weights_init.dtype == np.float64
    np.testing.assert_array_equal(loaded.weights_init, [0.25, 0.75])
    np.testing.assert_array_equal(loaded.means_, model.means_)


def test_plain_dictionary_parameters_round_trip(tmp_path):
    from emkit.models.mixture_model import MixtureModel

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.poisson(3.0, 200), rng.normal(size=200)]).astype(float)
    families = {"poisson": [0], "gaussian": [1]}
    model = MixtureModel(families=families, n_components=2, random_state=0).fit(X)
    path = tmp_path / "model.emkit"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.save(path)
    loaded = load(path)
    assert loaded.get_params()["families"] == families
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
