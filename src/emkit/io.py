"""Model files: save a fitted estimator and load it back, without pickle.

A model file is a ZIP archive holding one JSON member, ``metadata.json``, and one ``.npy``
member per array. The metadata names the file format and its version, the emkit version that
wrote it, the estimator class (a dotted path that must lie inside the ``emkit`` package), the
constructor parameters, the scalar fitted attributes and, for every array, its dtype, shape and
SHA-256 digest. Arrays are read with ``allow_pickle=False`` and the class is looked up by name
among emkit's own modules, so loading a file never runs code that came with the file. The
format is described in ``docs/model_files.md``.

Examples
--------
>>> import emkit
>>> model = emkit.GaussianMixture(n_components=2).fit(X)  # doctest: +SKIP
>>> model.save("faithful.emkit")  # doctest: +SKIP
>>> emkit.load("faithful.emkit").predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import numbers
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from emkit._backend import is_torch, to_numpy

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SaveLoadMixin",
    "load",
    "read_metadata",
    "save",
]

FORMAT_NAME = "emkit-model"
FORMAT_VERSION = 1
METADATA_MEMBER = "metadata.json"
ARRAY_DIRECTORY = "arrays/"
TRUSTED_PACKAGE = "emkit"

# Dtype kinds an array member may have: booleans, integers, floats, complex numbers and
# fixed-width strings. Object arrays (which would need pickle) are never written nor read.
_ARRAY_KINDS = "biufcU"
_MAX_METADATA_BYTES = 16 * 1024 * 1024
# What reading a damaged member can raise: a bad CRC, a broken deflate stream, a short read or
# an invalid ``.npy`` header.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError)

Estimator = TypeVar("Estimator")


def _fitted_attribute_names(estimator) -> list[str]:
    """Public fitted attributes: names ending in ``_`` and not starting with ``_``."""
    return sorted(
        name
        for name in vars(estimator)
        if name.endswith("_") and not name.startswith("_") and not name.endswith("__")
    )


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_trusted_path(path: str) -> None:
    if not (path == TRUSTED_PACKAGE or path.startswith(TRUSTED_PACKAGE + ".")):
        raise ValueError(
            f"estimator class {path!r} is not part of the {TRUSTED_PACKAGE!r} package; model "
            f"files can only hold {TRUSTED_PACKAGE} estimators"
        )
    if not all(part.isidentifier() for part in path.split(".")):
        raise ValueError(f"estimator class {path!r} is not a dotted class name")


def _resolve_class(path: str) -> type:
    """The class named by the dotted ``path``, looked up inside the emkit package only."""
    _check_trusted_path(path)
    module_name, _, qualname = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"estimator class {path!r} cannot be found in this version of emkit: {error}"
        ) from None
    cls = getattr(module, qualname, None)
    if (
        not isinstance(cls, type)
        or _class_path(cls) != path
        or not callable(getattr(cls, "get_params", None))
    ):
        raise ValueError(f"{path!r} does not name an emkit estimator class")
    return cls


def _is_real(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, complex)


def _is_number_list(value) -> bool:
    """Whether ``value`` is a list or tuple of real numbers, or of such lists (nested)."""
    return isinstance(value, list | tuple) and all(
        _is_real(item) or _is_number_list(item) for item in value
    )


def _is_plain(value) -> bool:
    """Whether ``value`` is plain data: None, bool, str, a real number, or lists and
    string-keyed dictionaries of plain data (a column specification, say)."""
    if value is None or isinstance(value, bool | str) or _is_real(value):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _plain(value):
    """A JSON-encodable copy of plain data (tuples become lists)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str):
        return value
    return _json_number(value)


def _json_number(value):
    """A JSON-encodable copy of a real number, boolean or nested list of them (same values)."""
    if isinstance(value, list | tuple):
        return [_json_number(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


class _Encoder:
    """Splits the state of an estimator into JSON entries and arrays."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, key: str, value: np.ndarray, kind: str) -> dict[str, Any]:
        if value.dtype.kind == "O":
            items = value.ravel().tolist()
            if not all(isinstance(item, str) for item in items):
                raise TypeError(
                    f"{key} is an object array that does not hold only strings; it cannot "
                    "be saved without pickle"
                )
            return {"kind": "object_strings", "shape": list(value.shape), "value": items}
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            raise TypeError(f"{key} has dtype {value.dtype}, which model files do not support")
        name = f"{ARRAY_DIRECTORY}{key}.npy"
        self.arrays[name] = np.require(value, requirements="C")
        return {"kind": kind, "member": name}

    def encode(self, key: str, value) -> dict[str, Any]:
        """Describe ``value`` for the metadata; arrays are set aside under ``key``."""
        if is_torch(value):
            value = to_numpy(value)
        if value is None or isinstance(value, bool | str):
            return {"kind": "json", "value": value}
        if isinstance(value, np.ndarray):
            return self._array(key, value, "array")
        if isinstance(value, np.generic):
            return self._array(key, np.asarray(value), "scalar")
        if isinstance(value, numbers.Number) and not isinstance(value, complex):
            return {"kind": "json", "value": _json_number(value)}
        if _is_number_list(value):
            container = "tuple" if isinstance(value, tuple) else "list"
            if value and all(isinstance(item, np.generic) for item in value):
                dtypes = {item.dtype for item in value}
                if len(dtypes) == 1:
                    entry = self._array(key, np.asarray(value), "array")
                    return {**entry, "kind": container}
            return {"kind": container, "value": _json_number(value)}
        if isinstance(value, dict) and _is_plain(value):
            return {"kind": "mapping", "value": _plain(value)}
        raise TypeError(f"{key} of type {type(value).__name__} cannot be saved")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes(order="C")).hexdigest()


def _estimator_state(estimator) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from emkit import __version__

    if not callable(getattr(estimator, "get_params", None)):
        raise TypeError(
            f"{type(estimator).__name__} is not a scikit-learn style estimator (no get_params)"
        )
    cls = type(estimator)
    class_path = _class_path(cls)
    _check_trusted_path(class_path)
    encoder = _Encoder()
    params: dict[str, Any] = {}
    unsaved: list[str] = []
    for name, value in sorted(estimator.get_params(deep=False).items()):
        try:
            params[name] = encoder.encode(f"params.{name}", value)
        except TypeError:
            params[name] = {"kind": "json", "value": None}
            unsaved.append(name)
    if unsaved:
        warnings.warn(
            f"parameter(s) {', '.join(unsaved)} of {cls.__name__} hold values that cannot be "
            "stored in a model file (such as callables or random generators); they are saved "
            "as None",
            UserWarning,
            stacklevel=3,
        )
    attributes = {
        name: encoder.encode(f"attributes.{name}", getattr(estimator, name))
        for name in _fitted_attribute_names(estimator)
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "emkit_version": __version__,
        "estimator": class_path,
        "params": params,
        "attributes": attributes,
        "unsaved_params": unsaved,
        "arrays": {
            name: {
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "sha256": _digest(array),
            }
            for name, array in encoder.arrays.items()
        },
    }
    return metadata, encoder.arrays


def save(estimator, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``estimator`` to a model file.

    Parameters
    ----------
    estimator : emkit estimator
        Any estimator of the ``emkit`` package, fitted or not. Its ``get_params()`` and its
        public fitted attributes (names ending in ``_``) are saved; PyTorch tensors are saved
        as NumPy arrays. Parameters that cannot be stored (callables, random generators) are
        saved as ``None`` with a warning.
    path : str or path-like
        Destination; ``.emkit`` is the customary suffix. Nothing is appended to it.
    overwrite : bool, default=False
        Replace an existing file. Without it an existing file is an error.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    ValueError
        If the estimator's class lies outside the ``emkit`` package.
    TypeError
        If a fitted attribute holds a value that model files cannot represent.

    Notes
    -----
    The file is written to a temporary file in the destination folder and then renamed, so a
    reader never sees half a file and an interrupted save leaves any previous file intact.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    metadata, arrays = _estimator_state(estimator)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"folder {directory} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=2, sort_keys=True))
                for name, array in arrays.items():
                    with archive.open(name, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _rename_without_overwriting(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return path


def _rename_without_overwriting(source: str, destination: Path) -> None:
    """Move ``source`` to ``destination`` atomically unless ``destination`` exists."""
    try:
        os.link(source, destination)
    except FileExistsError:
        raise FileExistsError(
            f"{destination} already exists; pass overwrite=True to replace it"
        ) from None
    except OSError:
        if destination.exists():
            raise FileExistsError(
                f"{destination} already exists; pass overwrite=True to replace it"
            ) from None
        os.replace(source, destination)


def _open_archive(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a model file")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(
            f"{path} is not an emkit model file (not a ZIP archive, or truncated)"
        ) from None


def _read_metadata(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        info = archive.getinfo(METADATA_MEMBER)
    except KeyError:
        raise ValueError(f"{path} is not an emkit model file (no {METADATA_MEMBER})") from None
    if info.file_size > _MAX_METADATA_BYTES:
        raise ValueError(f"{path}: {METADATA_MEMBER} is implausibly large")
    try:
        raw = archive.read(METADATA_MEMBER)
    except _READ_ERRORS as error:
        raise ValueError(f"{path} is damaged: {METADATA_MEMBER} cannot be read ({error})") from None
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except ValueError as error:
        raise ValueError(
            f"{path} is damaged: {METADATA_MEMBER} is not valid JSON ({error})"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not an emkit model file (format is not {FORMAT_NAME!r})")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path} is damaged: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model file format version {version}, written by emkit "
            f"{metadata.get('emkit_version', '?')}; this emkit reads versions up to "
            f"{FORMAT_VERSION}. Upgrade emkit to load it."
        )
    for key, kind in (("estimator", str), ("params", dict), ("attributes", dict), ("arrays", dict)):
        if not isinstance(metadata.get(key), kind):
            raise ValueError(f"{path} is damaged: metadata field {key!r} is missing or invalid")
    _check_trusted_path(metadata["estimator"])
    return metadata


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a model file, checked but without loading the estimator.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    dict
        The decoded ``metadata.json`` (see ``docs/model_files.md``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an emkit model file, is damaged, or has a newer format version.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        return _read_metadata(archive, path)


def _read_arrays(archive: zipfile.ZipFile, path: Path, described: dict) -> dict[str, np.ndarray]:
    members = {name for name in archive.namelist() if name != METADATA_MEMBER}
    if members != set(described):
        extra = sorted(members - set(described))
        missing = sorted(set(described) - members)
        raise ValueError(
            f"{path} is damaged or was tampered with: arrays on file do not match the metadata"
            f" (unexpected {extra}, missing {missing})"
        )
    arrays = {}
    for name, description in described.items():
        try:
            expected_dtype = np.dtype(description["dtype"])
            expected_shape = tuple(description["shape"])
            expected_digest = description["sha256"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path} is damaged: invalid description of {name} ({error})"
            ) from None
        if expected_dtype.kind not in _ARRAY_KINDS:
            raise ValueError(f"{path}: array {name} has unsupported dtype {expected_dtype}")
        try:
            with archive.open(name) as member:
                array = np.lib.format.read_array(member, allow_pickle=False)
        except _READ_ERRORS as error:
            raise ValueError(f"{path} is damaged: array {name} cannot be read ({error})") from None
        if array.dtype != expected_dtype or array.shape != expected_shape:
            raise ValueError(
                f"{path} is damaged or was tampered with: array {name} has dtype {array.dtype} "
                f"and shape {array.shape}, the metadata says {expected_dtype} and "
                f"{expected_shape}"
            )
        if _digest(array) != expected_digest:
            raise ValueError(
                f"{path} is damaged or was tampered with: the checksum of array {name} does "
                "not match the metadata"
            )
        arrays[name] = array
    return arrays


def _decode(path: Path, key: str, entry, arrays: dict[str, np.ndarray]):
    if not isinstance(entry, dict) or "kind" not in entry:
        raise ValueError(f"{path} is damaged: invalid entry for {key}")
    kind = entry["kind"]
    if kind == "json":
        value = entry.get("value")
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ValueError(f"{path} is damaged: invalid value for {key}")
        return value
    if kind == "object_strings":
        items = entry.get("value")
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"{path} is damaged: invalid strings for {key}")
        value = np.empty(len(items), dtype=object)
        value[:] = items
        try:
            return value.reshape(entry.get("shape", [len(items)]))
        except (TypeError, ValueError):
            raise ValueError(f"{path} is damaged: invalid shape for {key}") from None
    if kind in ("list", "tuple"):
        if "member" in entry:
            values = list(_member(path, key, entry, arrays))
        else:
            values = entry.get("value")
            if not isinstance(values, list) or not _is_number_list(values):
                raise ValueError(f"{path} is damaged: invalid list for {key}")
        return tuple(values) if kind == "tuple" else values
    if kind == "mapping":
        value = entry.get("value")
        if not isinstance(value, dict) or not _is_plain(value):
            raise ValueError(f"{path} is damaged: invalid mapping for {key}")
        return value
    if kind == "array":
        return _member(path, key, entry, arrays)
    if kind == "scalar":
        array = _member(path, key, entry, arrays)
        if array.ndim != 0:
            raise ValueError(f"{path} is damaged: {key} should be a scalar")
        return array[()]
    raise ValueError(f"{path} is damaged: unknown kind {kind!r} for {key}")


def _member(path: Path, key: str, entry: dict, arrays: dict[str, np.ndarray]) -> np.ndarray:
    try:
        return arrays[entry["member"]]
    except (KeyError, TypeError):
        raise ValueError(f"{path} is damaged: no array for {key}") from None


def load(path: str | os.PathLike):
    """Load an estimator written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A model file.

    Returns
    -------
    estimator
        A new instance of the saved class, built from the saved parameters and holding the
        saved fitted attributes; arrays come back bit for bit with their dtypes (PyTorch
        tensors come back as NumPy arrays).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an emkit model file, is truncated or damaged, was tampered with
        (an array whose checksum, dtype or shape disagrees with the metadata), names a class
        outside the ``emkit`` package, or uses a newer format version.

    Notes
    -----
    Loading imports the estimator's module from the installed ``emkit`` package and nothing
    else; arrays are read with ``allow_pickle=False``.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        metadata = _read_metadata(archive, path)
        arrays = _read_arrays(archive, path, metadata["arrays"])
    cls = _resolve_class(metadata["estimator"])
    params = {
        name: _decode(path, f"parameter {name}", entry, arrays)
        for name, entry in metadata["params"].items()
    }
    try:
        estimator = cls(**params)
    except TypeError as error:
        raise ValueError(
            f"{path} holds parameters that {cls.__name__} does not accept: {error}"
        ) from None
    for name, entry in metadata["attributes"].items():
        if not (name.endswith("_") and not name.startswith("_") and name.isidentifier()):
            raise ValueError(f"{path} is damaged: invalid attribute name {name!r}")
        setattr(estimator, name, _decode(path, f"attribute {name}", entry, arrays))
    return estimator


class SaveLoadMixin:
    """Gives an estimator ``save`` and ``load`` methods backed by :mod:`emkit.io`.

    Examples
    --------
    >>> import os, tempfile
    >>> from emkit import GaussianMixture
    >>> path = os.path.join(tempfile.mkdtemp(), "model.emkit")
    >>> model = GaussianMixture(random_state=0).fit([[0.0], [1.0], [2.0]])
    >>> _ = model.save(path)
    >>> GaussianMixture.load(path).means_
    array([[1.]])
    """

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write this estimator to ``path``; see :func:`emkit.io.save`."""
        return save(self, path, overwrite=overwrite)

    @classmethod
    def load(cls: type[Estimator], path: str | os.PathLike) -> Estimator:
        """Load an estimator of this class from ``path``; see :func:`emkit.io.load`.

        Raises
        ------
        ValueError
            If the file holds an estimator of another class.
        """
        estimator = load(path)
        if not isinstance(estimator, cls):
            raise ValueError(f"{path} holds a {type(estimator).__name__}, not a {cls.__name__}")
        return estimator
