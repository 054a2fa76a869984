"""Input validation shared by every estimator.

Bad input is refused before any work starts, with a message that names what is wrong and
where: the argument, the row and the column.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from emkit._backend import Array, is_torch, namespace, to_numpy

__all__ = [
    "check_data",
    "check_finite",
    "check_missing",
    "check_n_samples",
    "check_sample_weight",
    "describe_position",
]

FLOAT_DTYPES = (np.float64, np.float32)


def describe_position(row: int, column: int, feature_names=None) -> str:
    """``"row 3, column 1 ('waiting')"`` for messages (0-based indices, as NumPy's)."""
    where = f"row {row}, column {column}"
    if feature_names is not None:
        where += f" ({feature_names[column]!r})"
    return where


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _locate_non_numeric(X, name: str, error: Exception) -> Exception:
    """An error naming the first cell of ``X`` that is not a real number."""
    if hasattr(X, "dtypes") and hasattr(X, "columns"):
        for column, (label, dtype) in enumerate(zip(X.columns, X.dtypes, strict=True)):
            kind = getattr(dtype, "kind", "O")
            if kind not in "biuf":
                for row, value in enumerate(X.iloc[:, column]):
                    if not _is_number(value):
                        return type(error)(
                            f"{name} column {label!r} (column {column}) is not numeric: "
                            f"row {row} holds {value!r}. {error}"
                        )
                return type(error)(f"{name} column {label!r} has dtype {dtype}. {error}")
        return error
    array = np.asarray(X, dtype=object)
    if array.ndim != 2:
        return error
    for row, column in np.ndindex(*array.shape):
        value = array[row, column]
        if not _is_number(value):
            return type(error)(
                f"{name} holds a value that is not a number at "
                f"{describe_position(row, column)}: {value!r}. {error}"
            )
    return error


def check_finite(
    X: Array, name: str = "X", feature_names=None, chunk_rows: int = 65536, *,
    allow_nan: bool = False,
) -> None:
    """Raise ``ValueError`` naming the first NaN or infinite entry of ``X``.

    With ``allow_nan``, NaN marks a missing value and passes; infinities are still refused.
    Rows are checked a block at a time, so no temporary as large as ``X`` is made.
    """
    xp = namespace(X)

    def bad_entries(block):
        return xp.isinf(block) if allow_nan else ~xp.isfinite(block)

    for start in range(0, X.shape[0], chunk_rows):
        bad = bad_entries(X[start : start + chunk_rows])
        if not bool(xp.any(bad)):
            continue
        first = np.argwhere(to_numpy(bad))[0]
        row = start + int(first[0])
        column = int(first[1]) if X.ndim == 2 else 0
        value = float(to_numpy(X[row, column] if X.ndim == 2 else X[row]))
        count = sum(
            int(to_numpy(xp.sum(xp.astype(bad_entries(X[i : i + chunk_rows]), xp.int64))))
            for i in range(start, X.shape[0], chunk_rows)
        )
        where = describe_position(row, column, feature_names)
        if allow_nan:
            raise ValueError(
                f"{name} contains inf at {where} (first of {count} infinite entries). "
                "Infinite values are not data; a missing value is marked by NaN."
            )
        kind = "NaN" if np.isnan(value) else "inf"
        raise ValueError(
            f"{name} contains {kind} at {where} (first of {count} non-finite entries). Remove "
            "or impute these rows first; missing values are not supported by this estimator."
        )


def check_missing(
    X: Array, name: str = "X", feature_names=None, *, columns: bool = True,
    chunk_rows: int = 65536,
) -> None:
    """Refuse a row (and, with ``columns``, a column) of ``X`` in which every entry is NaN.

    Such a row has no observed value: its marginal density is 1 whatever the parameters, so
    it tells EM nothing and would only slow it down. A column without any observed value
    leaves its parameters undetermined. Rows are checked a block at a time.

    Raises
    ------
    ValueError
        Naming the first such row or column.
    """
    xp = namespace(X)
    observed_per_column = np.zeros(X.shape[1], dtype=np.int64)
    for start in range(0, X.shape[0], chunk_rows):
        missing = xp.isnan(X[start : start + chunk_rows])
        empty = to_numpy(xp.all(missing, axis=1))
        if empty.any():
            row = start + int(np.argmax(empty))
            raise ValueError(
                f"{name} row {row} has no observed value (every entry is NaN): it carries no "
                "information about the parameters. Remove it."
            )
        if columns:
            observed_per_column += to_numpy(
                xp.sum(xp.astype(~missing, xp.int64), axis=0)
            ).astype(np.int64)
    if columns and (observed_per_column == 0).any():
        column = int(np.argmax(observed_per_column == 0))
        label = f"column {column}"
        if feature_names is not None:
            label += f" ({feature_names[column]!r})"
        raise ValueError(
            f"{name} {label} has no observed value (every entry is NaN): its parameters "
            "cannot be estimated. Remove the column."
        )


def _check_torch(estimator, X, *, reset: bool, name: str, dtypes) -> Array:
    import torch

    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D {name}, got a {X.ndim}D tensor of shape {tuple(X.shape)}. Reshape "
            "your data with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )
    if X.is_complex():
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}.")
    if X.dtype not in (torch.float64, torch.float32):
        X = X.to(torch.float64 if np.float64 in dtypes else torch.float32)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) (shape="
            f"{tuple(X.shape)}) while a minimum of 1 is required."
        )
    if reset:
        estimator.n_features_in_ = int(X.shape[1])
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X


def check_data(
    estimator,
    X,
    *,
    reset: bool,
    name: str = "X",
    ensure_min_samples: int = 1,
    allow_nan: bool = False,
) -> Array:
    """Validate a data matrix for ``estimator``.

    NumPy-like input (arrays, lists, DataFrames, sparse refused) goes through scikit-learn's
    ``validate_data``, which also records or checks ``n_features_in_`` and
    ``feature_names_in_``; PyTorch tensors stay tensors on their device. Float32 stays
    float32; everything else becomes float64. With ``allow_nan``, NaN marks a missing value
    and is kept (see :func:`check_missing` for rows or columns without any observed value).

    Raises
    ------
    ValueError
        For infinity, or NaN unless ``allow_nan`` (naming the first row and column), complex
        or non-numeric values (naming the cell), fewer than ``ensure_min_samples`` rows, a
        wrong number of features.
    TypeError
        For cells that cannot be converted to a number at all, such as dictionaries.
    """
    if is_torch(X):
        X = _check_torch(estimator, X, reset=reset, name=name, dtypes=FLOAT_DTYPES)
        if X.shape[0] < ensure_min_samples:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) while a minimum of "
                f"{ensure_min_samples} is required."
            )
    else:
        try:
            X = validate_data(
                estimator,
                X,
                reset=reset,
                dtype=list(FLOAT_DTYPES),
                ensure_all_finite=False,
                ensure_min_samples=ensure_min_samples,
                accept_sparse=False,
            )
        except (TypeError, ValueError) as error:
            message = str(error)
            if "could not convert" in message or "argument must be" in message:
                raise _locate_non_numeric(X, name, error) from error
            raise
    check_finite(X, name, getattr(estimator, "feature_names_in_", None), allow_nan=allow_nan)
    return X


def check_n_samples(X: Array, n_components: int, what: str = "n_components") -> None:
    """Refuse fewer samples than components, before any work."""
    if X.shape[0] < n_components:
        raise ValueError(
            f"Expected n_samples >= {what}, but got {what}={n_components} and "
            f"n_samples={X.shape[0]}: each component needs at least one sample."
        )


def check_sample_weight(sample_weight, X: Array) -> Array | None:
    """Validate ``sample_weight`` against ``X``: finite, non-negative, not all zero.

    Returns ``None`` for unit weights, otherwise a 1-D array in the namespace, on the device
    and of the dtype of ``X``.
    """
    if sample_weight is None:
        return None
    xp = namespace(X)
    if is_torch(sample_weight) or is_torch(X):
        from emkit._backend import as_backend

        weights = as_backend(to_numpy(sample_weight, dtype=np.float64), like=X)
    else:
        weights = check_array(
            sample_weight, ensure_2d=False, dtype=X.dtype, ensure_all_finite=False,
            input_name="sample_weight",
        )
        if weights.ndim == 0:
            weights = np.full(X.shape[0], float(weights), dtype=X.dtype)
    if weights.ndim != 1 or weights.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight must have shape ({X.shape[0]},) to match X, got "
            f"{tuple(weights.shape)}."
        )
    check_finite(weights[:, None], "sample_weight")
    host = to_numpy(weights)
    if (host < 0).any():
        row = int(np.argmax(host < 0))
        raise ValueError(f"sample_weight must be non-negative; row {row} is {float(host[row])!r}.")
    if not (host > 0).any():
        raise ValueError("sample_weight sums to zero: at least one sample needs weight.")
    return xp.asarray(weights)
