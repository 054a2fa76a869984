"""Reading data files: CSV/TSV with or without a header, ``.npy``, Parquet, standard input.

Used by the ``emkit`` command. Every problem is a :class:`DataFileError` whose message names
the file and, where it applies, the line, the row and the column.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "DataTable", "read_data"]

_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_LINES = 50


class DataFileError(ValueError):
    """A data file that cannot be read as a table of numbers."""


@dataclass
class DataTable:
    """Numbers read from a data file.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_features)
        The selected columns as float64.
    names : list of str or None
        Their names, when the file has a header (or is Parquet).
    source : str
        The file name, or ``<stdin>``, for messages.
    """

    values: np.ndarray
    names: list[str] | None
    source: str


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _split_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines not starting with ``#``, with their 1-based line numbers."""
    return [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _split_with(delimiter: str | None, line: str) -> list[str]:
    if delimiter is None:
        return line.split()
    return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]


def _sniff_delimiter(lines: list[str], prefer_tab: bool) -> str | None:
    """The delimiter giving the same number (> 1) of fields on the first lines.

    ``None`` means runs of white space; a single column gives ``","``.
    """
    order = ("\t", *(d for d in _DELIMITERS if d != "\t")) if prefer_tab else _DELIMITERS
    sample = lines[:_SNIFF_LINES]
    for delimiter in order:
        counts = {len(_split_with(delimiter, line)) for line in sample}
        if len(counts) == 1 and counts.pop() > 1:
            return delimiter
    counts = {len(line.split()) for line in sample}
    if len(counts) == 1 and counts.pop() > 1:
        return None
    return ","


def _resolve_columns(spec: str | None, names: list[str] | None, n_columns: int, source: str):
    """Indices of the columns chosen by ``--columns`` (names or 0-based indices)."""
    if spec is None:
        return list(range(n_columns))
    indices = []
    for token in (token.strip() for token in spec.split(",")):
        if not token:
            raise DataFileError(f"--columns {spec!r} has an empty entry")
        if names is not None and token in names:
            indices.append(names.index(token))
            continue
        try:
            index = int(token)
        except ValueError:
            known = f"columns are {', '.join(names)}" if names else "the data have no header"
            raise DataFileError(f"{source}: no column named {token!r} ({known})") from None
        if not -n_columns <= index < n_columns:
            raise DataFileError(
                f"{source}: column index {index} is out of range (the data have "
                f"{n_columns} column{'s' if n_columns != 1 else ''}, numbered from 0)"
            )
        indices.append(index % n_columns)
    if len(set(indices)) != len(indices):
        raise DataFileError(f"--columns {spec!r} names a column twice")
    return indices


def _column_label(index: int, names: list[str] | None) -> str:
    return f"column {index} ({names[index]!r})" if names else f"column {index}"


def _check_cells(rows, line_numbers, columns, names, source) -> None:
    """Raise a DataFileError naming the first cell that is not a finite number."""
    for row_index, row in enumerate(rows):
        for column in columns:
            cell = row[column]
            value = _parse_float(cell)
            if value is not None and math.isfinite(value):
                continue
            where = f"{source}, line {line_numbers[row_index]}, {_column_label(column, names)}"
            if not cell:
                raise DataFileError(f"{where}: empty cell (missing values are not supported)")
            if value is None:
                raise DataFileError(f"{where}: {cell!r} is not a number")
            raise DataFileError(f"{where}: {cell!r} is not a finite number")
    raise DataFileError(f"{source}: the data are not all finite numbers")


def _parse_text(text: str, source: str, columns: str | None, prefer_tab: bool) -> DataTable:
    lines = _split_lines(text)
    if not lines:
        raise DataFileError(f"{source}: no data (the file is empty)")
    delimiter = _sniff_delimiter([line for _, line in lines], prefer_tab)
    rows = [_split_with(delimiter, line) for _, line in lines]
    line_numbers = [number for number, _ in lines]
    first = rows[0]
    names = None
    if any(_parse_float(cell) is None for cell in first):
        names = first
        rows, line_numbers = rows[1:], line_numbers[1:]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise DataFileError(f"{source}: column name {duplicated[0]!r} appears twice")
    if not rows:
        raise DataFileError(f"{source}: no data rows after the header")
    n_columns = len(first)
    for number, row in zip(line_numbers, rows, strict=True):
        if len(row) != n_columns:
            raise DataFileError(
                f"{source}, line {number}: {len(row)} fields where the first line has {n_columns}"
            )
    indices = _resolve_columns(columns, names, n_columns, source)
    try:
        values = np.array([[row[i] for i in indices] for row in rows], dtype=np.float64)
    except ValueError:
        values = None
    if values is None or not np.all(np.isfinite(values)):
        _check_cells(rows, line_numbers, indices, names, source)
    return DataTable(
        values=values.reshape(len(rows), len(indices)),
        names=[names[i] for i in indices] if names else None,
        source=source,
    )


def _read_npy(path: Path, columns: str | None) -> DataTable:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise DataFileError(f"{path}: cannot read this .npy file ({error})") from None
    names = None
    if array.dtype.names:
        names = list(array.dtype.names)
        array = np.column_stack([array[name] for name in names]) if array.ndim == 1 else array
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-dimensional array, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: the array has dtype {array.dtype}, not numbers")
    indices = _resolve_columns(columns, names, array.shape[1], str(path))
    values = np.asarray(array[:, indices], dtype=np.float64)
    _check_finite(values, names, indices, str(path))
    return DataTable(values, [names[i] for i in indices] if names else None, str(path))


def _check_finite(values: np.ndarray, names, indices, source: str) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = (int(i) for i in bad[0])
        raise DataFileError(
            f"{source}, row {row}, {_column_label(indices[column], names)}: "
            f"{float(values[row, column])} is not a finite number"
        )


def _read_parquet(path: Path, columns: str | None) -> DataTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(
            f"{path}: reading Parquet files needs pyarrow, which is not installed "
            "(pip install 'emkit[io]')"
        ) from None
    import pyarrow as pa

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataFileError(f"{path}: cannot read this Parquet file ({error})") from None
    names = list(table.column_names)
    indices = _resolve_columns(columns, names, len(names), str(path))
    arrays = []
    for index in indices:
        column = table.column(index)
        kind = column.type
        if not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            raise DataFileError(f"{path}: column {names[index]!r} holds {kind}, not numbers")
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFileError(
                f"{path}, row {row}, column {names[index]!r}: missing value "
                "(missing values are not supported)"
            )
        arrays.append(column.to_numpy().astype(np.float64))
    values = np.column_stack(arrays) if arrays else np.empty((table.num_rows, 0))
    _check_finite(values, names, indices, str(path))
    return DataTable(values, [names[i] for i in indices], str(path))


def read_data(path: str, columns: str | None = None) -> DataTable:
    """Read a data file (for the ``emkit`` command).

    Parameters
    ----------
    path : str
        A CSV/TSV/text file (delimiter and header row detected), a ``.npy`` file, a Parquet
        file (``.parquet`` or ``.pq``; needs pyarrow) or ``-`` for standard input (text).
    columns : str, default=None
        Comma-separated column names or 0-based indices (negative counting from the end);
        all columns when None.

    Returns
    -------
    DataTable

    Raises
    ------
    DataFileError
        For a missing or unreadable file, an unknown column, ragged rows or a cell that is
        not a finite number (the message names its line and column).
    """
    if path == "-":
        text = sys.stdin.read()
        return _parse_text(text, "<stdin>", columns, prefer_tab=False)
    file = Path(path)
    if not file.exists():
        raise DataFileError(f"{path}: no such file")
    if file.is_dir():
        raise DataFileError(f"{path}: is a directory, not a data file")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        return _read_npy(file, columns)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(file, columns)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataFileError(
            f"{path}: not a UTF-8 text file (expected CSV, TSV, .npy or Parquet)"
        ) from None
    return _parse_text(text, path, columns, prefer_tab=suffix in (".tsv", ".tab"))
