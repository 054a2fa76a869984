"""The ``emkit`` command: fit, apply, inspect and choose Gaussian mixtures from a shell.

Subcommands: ``fit``, ``predict``, ``score``, ``sample``, ``select``, ``info`` and ``demo``;
``emkit COMMAND --help`` describes each, and ``docs/cli.md`` has examples. Data are read from
CSV or TSV files (with or without a header row), ``.npy`` files, Parquet files (with pyarrow)
or standard input (``-``). A user error (a missing file, a bad column, a cell that is not a
number, a bad option, an output file that exists) ends the command with one line
``emkit: error: ...`` on standard error and a non-zero exit status. Set ``EMKIT_DEBUG=1`` to
see the traceback instead.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from emkit._backend import to_numpy
from emkit.datafiles import DataTable, read_data

__all__ = ["UserError", "main", "parse_components"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


class UserError(click.ClickException):
    """An error the user can fix, shown as one line without a traceback."""

    exit_code = EXIT_ERROR


def _estimator_input(values: np.ndarray, names: Sequence[str] | None):
    """A DataFrame when there are names and pandas is installed, else the array."""
    if names is None:
        return values
    try:
        import pandas as pd
    except ImportError:
        return values
    return pd.DataFrame(values, columns=list(names))


def _model_input(model, table: DataTable, columns: str | None, path: str):
    """The data of ``table`` arranged as ``model`` was fitted."""
    expected = getattr(model, "feature_names_in_", None)
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise UserError(f"{path}: the model is not fitted")
    values, names = table.values, table.names
    if expected is not None and names is not None and columns is None:
        expected = [str(name) for name in expected]
        missing = [name for name in expected if name not in names]
        if missing:
            raise UserError(
                f"{table.source}: no column named {missing[0]!r}; the model was fitted on "
                f"columns {', '.join(expected)}"
            )
        values = values[:, [names.index(name) for name in expected]]
        names = expected
    if values.shape[1] != n_features:
        raise UserError(
            f"{table.source}: {values.shape[1]} column(s) selected but the model expects "
            f"{n_features}; choose them with --columns"
        )
    if expected is None:
        return values
    return _estimator_input(values, [str(name) for name in expected])


# ---------------------------------------------------------------------------------------------
# Output helpers


def _check_output(
    path: str | None, force: bool, option: str, stdout_ok: bool = False
) -> Path | None:
    """The output file ``path`` after checks; None for none (or ``-``: standard output)."""
    if path is None:
        return None
    if path == "-":
        if not stdout_ok:
            raise UserError(f"{option} -: this output cannot go to standard output")
        return None
    file = Path(path)
    if file.is_dir():
        raise UserError(f"{option} {path}: is a directory")
    if file.exists() and not force:
        raise UserError(f"{path} already exists; use --force to overwrite it")
    if not file.parent.is_dir():
        raise UserError(f"{option} {path}: folder {file.parent} does not exist")
    return file


def _check_image(path: str | None, force: bool) -> Path | None:
    file = _check_output(path, force, "--plot")
    if file is None:
        return None
    _require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = file.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UserError(
            f"--plot {path}: unknown image format {suffix!r} (use one of "
            f"{', '.join(sorted(formats))})"
        )
    return file


def _require_matplotlib() -> None:
    try:
        import matplotlib
    except ImportError:
        raise UserError(
            "pictures need matplotlib, which is not installed (pip install 'emkit[plot]')"
        ) from None
    matplotlib.use("Agg")


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _write_csv(header: Sequence[str], rows, out: Path | None) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if out is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        out.write_text(buffer.getvalue(), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    """``value`` with arrays, NumPy scalars and tensors turned into JSON types."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic | np.ndarray) or hasattr(value, "__array__"):
        array = to_numpy(value)
        return _jsonable(array.tolist()) if array.ndim else _jsonable(array.item())
    return repr(value)


def _echo_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(_jsonable(payload), indent=2))


def _format_vector(values, names=None) -> str:
    values = to_numpy(values, dtype=np.float64).ravel()
    if names is None:
        return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
    return ", ".join(f"{name}={v:.4g}" for name, v in zip(names, values, strict=True))


def _feature_names(model) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(int(model.n_features_in_))]


def _describe_mixture(model) -> list[str]:
    """Lines describing the components of a fitted Gaussian mixture."""
    names = _feature_names(model)
    weights = to_numpy(model.weights_, dtype=np.float64)
    means = to_numpy(model.means_, dtype=np.float64)
    covariances = to_numpy(model.covariances_, dtype=np.float64)
    lines = []
    for k, (weight, mean) in enumerate(zip(weights, means, strict=True)):
        lines.append(f"  component {k}: weight {weight:.4f}, mean {_format_vector(mean, names)}")
        if model.covariance_type == "full":
            covariance = covariances[k]
        elif model.covariance_type == "tied":
            covariance = covariances if k == 0 else None
        elif model.covariance_type == "diag":
            covariance = np.diag(covariances[k])
        else:
            covariance = covariances[k] * np.eye(len(names))
        if covariance is not None:
            label = "tied covariance" if model.covariance_type == "tied" else "covariance"
            rows = "; ".join(_format_vector(row) for row in covariance)
            lines.append(f"    {label}: [{rows}]")
    return lines


def _mixture_summary(model, X) -> dict[str, Any]:
    return {
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "lower_bound": float(to_numpy(model.lower_bound_)),
        "mean_log_likelihood": float(model.score(X)),
        "bic": float(model.bic(X)),
        "aic": float(model.aic(X)),
        "weights": model.weights_,
        "means": model.means_,
        "covariances": model.covariances_,
    }


# ---------------------------------------------------------------------------------------------
# Progress


class _Progress:
    """A tqdm bar fed by the estimator's callbacks, showing the current log-likelihood."""

    def __init__(self, total: int, description: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=description, unit="it", delay=0.5, leave=False)

    def __call__(self, info) -> None:
        """Record an :class:`emkit.em.loop.EMIteration`; iteration 0 starts a new run."""
        if info.iteration < self.bar.n:
            self.bar.reset()
        self.bar.update(info.iteration - self.bar.n)
        self.bar.set_postfix_str(f"log-likelihood {info.lower_bound:.6g}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _show_progress(option: bool | None) -> bool:
    return sys.stdout.isatty() if option is None else option


def _fit_with_progress(estimator, X, show: bool) -> None:
    """Fit ``estimator``, with a progress bar through its ``callbacks`` when ``show``."""
    params = estimator.get_params(deep=False)
    if not show or "callbacks" not in params:
        estimator.fit(X)
        return
    progress = _Progress(int(estimator.max_iter), "EM")
    estimator.set_params(callbacks=[progress])
    try:
        estimator.fit(X)
    finally:
        progress.close()
        estimator.set_params(callbacks=params["callbacks"])


# ---------------------------------------------------------------------------------------------
# The command group and its error handling


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _describe_exception(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror.lower()}"
    message = str(error) or type(error).__name__
    if isinstance(error, ValueError | OSError | ImportError):
        return message
    return f"unexpected {type(error).__name__}: {message}"


class _EmkitGroup(click.Group):
    """A click group whose every failure ends with one line ``emkit: error: ...``."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ):
        status = 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            try:
                result = super().main(
                    args, prog_name or "emkit", complete_var, standalone_mode=False, **extra
                )
                status = result if isinstance(result, int) else 0
            except click.exceptions.NoArgsIsHelpError as error:
                click.echo(error.ctx.get_help())
                status = self._fail("missing command", EXIT_USAGE, caught)
            except click.UsageError as error:
                hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
                status = self._fail(f"{error.format_message()}{hint}", EXIT_USAGE, caught)
            except click.ClickException as error:
                status = self._fail(error.format_message(), error.exit_code, caught)
            except click.Abort:
                status = self._fail("interrupted", EXIT_INTERRUPTED, caught)
            except Exception as error:
                if os.environ.get("EMKIT_DEBUG"):
                    raise
                status = self._fail(_describe_exception(error), EXIT_ERROR, caught)
            else:
                self._warn(caught)
        if standalone_mode:
            sys.exit(status)
        return status

    @staticmethod
    def _warn(caught: list[warnings.WarningMessage]) -> None:
        for message in dict.fromkeys(_one_line(str(w.message)) for w in caught):
            click.echo(f"emkit: warning: {message}", err=True)

    @staticmethod
    def _fail(message: str, status: int, caught: list[warnings.WarningMessage]) -> int:
        _EmkitGroup._warn(caught)
        click.echo(f"emkit: error: {_one_line(message)}", err=True)
        return status


@click.group(cls=_EmkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="emkit", prog_name="emkit")
def main() -> None:
    """Fit latent-variable models by Expectation-Maximization.

    Data files are CSV or TSV (header row optional), .npy, Parquet (with pyarrow), or - for
    standard input. Model files are written by 'emkit fit' and 'emkit select'.
    """


def _gaussian_mixture(**params: Any):
    from emkit.models.gaussian_mixture import GaussianMixture

    return GaussianMixture(**params)


_data_argument = click.argument("data", metavar="DATA")
_columns_option = click.option(
    "--columns",
    metavar="COLS",
    help="Comma-separated column names or 0-based indices to use (default: all).",
)
_force_option = click.option("--force", is_flag=True, help="Overwrite existing output files.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
_seed_option = click.option("--seed", type=int, default=None, help="Random seed.")
_progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar with the log-likelihood (default: when stdout is a terminal).",
)


def _fit_options(function: Callable) -> Callable:
    options = [
        click.option(
            "--max-iter",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Most EM iterations per initialisation.",
        ),
        click.option(
            "--tol",
            type=click.FloatRange(min=0.0),
            default=1e-3,
            show_default=True,
            help="Stop when the mean log-likelihood gains less than this.",
        ),
        click.option(
            "--n-init",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Initialisations; the best is kept.",
        ),
        click.option(
            "--reg-covar",
            type=click.FloatRange(min=0.0),
            default=1e-6,
            show_default=True,
            help="Added to the diagonal of the covariances.",
        ),
        click.option(
            "--init-params",
            type=click.Choice(["kmeans", "k-means++", "random", "random_from_data"]),
            default="kmeans",
            show_default=True,
            help="How the responsibilities start.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@main.command()
@_data_argument
@click.option(
    "--model",
    type=click.Choice(["gmm"]),
    default="gmm",
    show_default=True,
    help="Model to fit (gmm: Gaussian mixture).",
)
@click.option(
    "--n-components",
    "-k",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of components.",
)
@click.option(
    "--covariance-type",
    type=click.Choice(COVARIANCE_TYPES),
    default="full",
    show_default=True,
    help="Form of the covariance matrices.",
)
@_fit_options
@_seed_option
@_columns_option
@click.option("--out", "-o", metavar="FILE", help="Write the fitted model to FILE (.emkit).")
@click.option(
    "--plot",
    metavar="FILE.png",
    help="Draw the responsibilities and the log-likelihood to an image.",
)
@_force_option
@_json_option
@_progress_option
def fit(
    data: str,
    model: str,
    n_components: int,
    covariance_type: str,
    max_iter: int,
    tol: float,
    n_init: int,
    reg_covar: float,
    init_params: str,
    seed: int | None,
    columns: str | None,
    out: str | None,
    plot: str | None,
    force: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Fit a model to DATA and optionally save it with --out."""
    out_path = _check_output(out, force, "--out")
    plot_path = _check_image(plot, force)
    if plot_path is not None and out_path is not None and plot_path.resolve() == out_path.resolve():
        raise UserError("--out and --plot name the same file")
    table = read_data(data, columns)
    X = _estimator_input(table.values, table.names)
    estimator = _gaussian_mixture(
        n_components=n_components,
        covariance_type=covariance_type,
        max_iter=max_iter,
        tol=tol,
        n_init=n_init,
        reg_covar=reg_covar,
        init_params=init_params,
        random_state=seed,
    )
    start = time.perf_counter()
    _fit_with_progress(estimator, X, _show_progress(progress))
    elapsed = time.perf_counter() - start
    if out_path is not None:
        from emkit.io import save

        save(estimator, out_path, overwrite=force)
    if plot_path is not None:
        _save_figure(_fit_figure(estimator, X, table.values.shape[1]), plot_path)
    summary = _mixture_summary(estimator, X)
    if as_json:
        _echo_json(
            {
                "model": model,
                "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
                "data": table.source,
                "n_samples": table.values.shape[0],
                "n_features": table.values.shape[1],
                "feature_names": table.names,
                "params": estimator.get_params(deep=False),
                **summary,
                "seconds": elapsed,
                "out": str(out_path) if out_path else None,
                "plot": str(plot_path) if plot_path else None,
            }
        )
        return
    n, d = table.values.shape
    click.echo(
        f"Gaussian mixture: {n_components} component(s), {covariance_type} covariance, "
        f"fitted on {n} samples x {d} features in {elapsed:.2f} s"
    )
    state = "converged" if summary["converged"] else "did NOT converge"
    click.echo(
        f"{state} after {summary['n_iter']} iterations; mean log-likelihood "
        f"{summary['mean_log_likelihood']:.6g}, BIC {summary['bic']:.6g}, "
        f"AIC {summary['aic']:.6g}"
    )
    for line in _describe_mixture(estimator):
        click.echo(line)
    if out_path is not None:
        click.echo(f"model written to {out_path}")
    if plot_path is not None:
        click.echo(f"picture written to {plot_path}")


def _fit_figure(estimator, X, n_features: int):
    """Responsibilities (with two or more features) beside the log-likelihood curve."""
    import matplotlib.pyplot as plt

    from emkit.plot import plot_log_likelihood, plot_responsibilities

    two_d = n_features >= 2
    fig, axes = plt.subplots(
        1,
        2 if two_d else 1,
        figsize=(11 if two_d else 5.5, 4.5),
        squeeze=False,
        layout="constrained",
    )
    if two_d:
        plot_responsibilities(estimator, X, ax=axes[0, 0])
    plot_log_likelihood(estimator, ax=axes[0, -1])
    return fig


def _load_model(path: str):
    from emkit.io import load

    try:
        return load(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such model file") from None


@main.command()
@click.argument("model_file", metavar="MODEL")
@_data_argument
@click.option("--proba", is_flag=True, help="Write the probability of every component.")
@click.option("--out", "-o", metavar="FILE.csv", help="Write to FILE.csv instead of stdout.")
@_columns_option
@_force_option
def predict(
    model_file: str, data: str, proba: bool, out: str | None, columns: str | None, force: bool
) -> None:
    """Write the component of each row of DATA (or its probabilities) as CSV."""
    out_path = _check_output(out, force, "--out", stdout_ok=True)
    model = _load_model(model_file)
    table = read_data(data, columns)
    X = _model_input(model, table, columns, model_file)
    if proba:
        probabilities = to_numpy(model.predict_proba(X), dtype=np.float64)
        header = [f"p{k}" for k in range(probabilities.shape[1])]
        _write_csv(header, probabilities.tolist(), out_path)
    else:
        labels = to_numpy(model.predict(X)).astype(np.int64)
        _write_csv(["label"], ([int(label)] for label in labels), out_path)
    if out_path is not None:
        click.echo(f"{table.values.shape[0]} rows written to {out_path}", err=True)


@main.command()
@click.argument("model_file", metavar="MODEL")
@_data_argument
@_columns_option
@_json_option
def score(model_file: str, data: str, columns: str | None, as_json: bool) -> None:
    """Log-likelihood of DATA under MODEL (and its BIC and AIC)."""
    model = _load_model(model_file)
    table = read_data(data, columns)
    X = _model_input(model, table, columns, model_file)
    n = table.values.shape[0]
    mean = float(model.score(X))
    payload = {"n_samples": n, "mean_log_likelihood": mean, "log_likelihood": mean * n}
    if hasattr(model, "bic"):
        payload.update(bic=float(model.bic(X)), aic=float(model.aic(X)))
    if as_json:
        _echo_json(payload)
        return
    click.echo(f"samples: {n}")
    click.echo(f"mean log-likelihood per sample: {mean:.10g}")
    click.echo(f"total log-likelihood: {mean * n:.10g}")
    if "bic" in payload:
        click.echo(f"BIC: {payload['bic']:.10g}")
        click.echo(f"AIC: {payload['aic']:.10g}")


@main.command()
@click.argument("model_file", metavar="MODEL")
@click.option(
    "-n",
    "--n-samples",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Number of samples to draw.",
)
@_seed_option
@click.option("--labels", is_flag=True, help="Add a column with each sample's component.")
@click.option("--out", "-o", metavar="FILE.csv", help="Write to FILE.csv instead of stdout.")
@_force_option
def sample(
    model_file: str, n_samples: int, seed: int | None, labels: bool, out: str | None, force: bool
) -> None:
    """Draw samples from MODEL and write them as CSV."""
    out_path = _check_output(out, force, "--out", stdout_ok=True)
    model = _load_model(model_file)
    if seed is not None:
        model.set_params(random_state=seed)
    X, y = model.sample(n_samples)
    X = to_numpy(X, dtype=np.float64)
    y = to_numpy(y).astype(np.int64)
    header = _feature_names(model) + (["component"] if labels else [])
    rows = ([*row, int(label)] if labels else row for row, label in zip(X.tolist(), y, strict=True))
    _write_csv(header, rows, out_path)
    if out_path is not None:
        click.echo(f"{n_samples} samples written to {out_path}", err=True)


def parse_components(spec: str) -> list[int]:
    """Numbers of components from ``"1-9"``, ``"2,4,8"`` or ``"1-3,5"``.

    Raises
    ------
    click.BadParameter
        For anything else, or numbers below 1.
    """
    values: list[int] = []
    for part in (part.strip() for part in spec.split(",")):
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise ValueError
                values.extend(range(low, high + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise click.BadParameter(
                f"{spec!r} is not a list of numbers or ranges such as 1-9 or 2,4,8"
            ) from None
    if min(values) < 1:
        raise click.BadParameter("numbers of components must be at least 1")
    return sorted(set(values))


def _parse_covariance_types(spec: str) -> list[str]:
    values = [part.strip() for part in spec.split(",") if part.strip()]
    unknown = [value for value in values if value not in COVARIANCE_TYPES]
    if unknown or not values:
        raise click.BadParameter(
            f"{unknown[0] if unknown else spec!r} is not a covariance type (choose among "
            f"{', '.join(COVARIANCE_TYPES)})"
        )
    return list(dict.fromkeys(values))


@main.command()
@_data_argument
@click.option(
    "--n-components",
    "-k",
    "n_components_spec",
    default="1-9",
    show_default=True,
    metavar="RANGE",
    help="Numbers of components to try: 1-9, 2,4,8 or 1-3,5.",
)
@click.option(
    "--covariance-type",
    "covariance_spec",
    default=",".join(COVARIANCE_TYPES),
    show_default=True,
    metavar="TYPES",
    help="Comma-separated covariance types to try.",
)
@click.option(
    "--criterion",
    type=click.Choice(["bic", "aic", "icl"]),
    default="bic",
    show_default=True,
    help="Criterion to minimise.",
)
@_fit_options
@_seed_option
@_columns_option
@click.option("--out", "-o", metavar="FILE", help="Write the best model to FILE (.emkit).")
@click.option("--plot", metavar="FILE.png", help="Draw the criteria against K to an image.")
@_force_option
@_json_option
@_progress_option
def select(
    data: str,
    n_components_spec: str,
    covariance_spec: str,
    criterion: str,
    max_iter: int,
    tol: float,
    n_init: int,
    reg_covar: float,
    init_params: str,
    seed: int | None,
    columns: str | None,
    out: str | None,
    plot: str | None,
    force: bool,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Choose the number of components and covariance type of a Gaussian mixture."""
    try:
        components = parse_components(n_components_spec)
    except click.BadParameter as error:
        error.param_hint = "'--n-components'"
        raise
    try:
        covariance_types = _parse_covariance_types(covariance_spec)
    except click.BadParameter as error:
        error.param_hint = "'--covariance-type'"
        raise
    out_path = _check_output(out, force, "--out")
    plot_path = _check_image(plot, force)
    table = read_data(data, columns)
    X = _estimator_input(table.values, table.names)
    result = _run_selection(
        X,
        components,
        covariance_types,
        criterion,
        seed,
        _show_progress(progress),
        max_iter=max_iter,
        tol=tol,
        n_init=n_init,
        reg_covar=reg_covar,
        init_params=init_params,
    )
    best = result.best_estimator_
    if out_path is not None:
        from emkit.io import save

        save(best, out_path, overwrite=force)
    if plot_path is not None:
        from emkit.plot import plot_selection

        criteria = [criterion, *(c for c in ("bic", "aic") if c != criterion)]
        _save_figure(plot_selection(result, criteria=criteria).figure, plot_path)
    if as_json:
        _echo_json(
            {
                "criterion": criterion,
                "table": result.results_,
                "best": {**result.best_params_, **_mixture_summary(best, X)},
                "out": str(out_path) if out_path else None,
                "plot": str(plot_path) if plot_path else None,
            }
        )
        return
    click.echo(result.to_text())
    params = result.best_params_
    click.echo(
        f"\nbest by {criterion.upper()}: {params['n_components']} component(s), "
        f"{params['covariance_type']} covariance"
    )
    for line in _describe_mixture(best):
        click.echo(line)
    if out_path is not None:
        click.echo(f"model written to {out_path}")
    if plot_path is not None:
        click.echo(f"picture written to {plot_path}")


def _run_selection(X, components, covariance_types, criterion, seed, show, **fit_params):
    from emkit.selection import select_gaussian_mixture

    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(components) * len(covariance_types), desc="models", delay=0.5, leave=False
        )

    def advance(row: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"K={row['n_components']} {row['covariance_type']}", refresh=False)

    try:
        return select_gaussian_mixture(
            X,
            n_components=components,
            covariance_types=covariance_types,
            criterion=criterion,
            random_state=seed,
            callback=advance,
            **fit_params,
        )
    finally:
        if bar is not None:
            bar.close()


@main.command()
@click.argument("model_file", metavar="MODEL")
@_json_option
def info(model_file: str, as_json: bool) -> None:
    """Describe a model file: format, estimator, parameters and fitted state."""
    from emkit.io import read_metadata

    try:
        metadata = read_metadata(model_file)
    except FileNotFoundError:
        raise UserError(f"{model_file}: no such model file") from None
    model = _load_model(model_file)
    params = model.get_params(deep=False)
    attributes = sorted(metadata["attributes"])
    fitted = "means_" in attributes
    if as_json:
        payload = {
            "file": model_file,
            "format": metadata["format"],
            "format_version": metadata["format_version"],
            "emkit_version": metadata.get("emkit_version"),
            "estimator": metadata["estimator"],
            "params": params,
            "fitted": fitted,
            "attributes": {name: _shape_of(getattr(model, name)) for name in attributes},
        }
        if fitted:
            payload.update(
                n_features=int(model.n_features_in_),
                feature_names=_feature_names(model),
                converged=getattr(model, "converged_", None),
                n_iter=getattr(model, "n_iter_", None),
                lower_bound=getattr(model, "lower_bound_", None),
                weights=getattr(model, "weights_", None),
                means=getattr(model, "means_", None),
            )
        _echo_json(payload)
        return
    click.echo(f"file: {model_file}")
    click.echo(
        f"format: {metadata['format']} version {metadata['format_version']}, written by emkit "
        f"{metadata.get('emkit_version', '?')}"
    )
    click.echo(f"estimator: {metadata['estimator']}")
    click.echo("parameters:")
    for name, value in sorted(params.items()):
        click.echo(f"  {name} = {value!r}")
    if not fitted:
        click.echo("not fitted")
        return
    click.echo(f"features: {', '.join(_feature_names(model))}")
    if hasattr(model, "converged_"):
        state = "converged" if model.converged_ else "did not converge"
        click.echo(
            f"{state} after {model.n_iter_} iterations; lower bound "
            f"{float(to_numpy(model.lower_bound_)):.6g}"
        )
    if hasattr(model, "weights_") and hasattr(model, "covariance_type"):
        for line in _describe_mixture(model):
            click.echo(line)
    click.echo("fitted attributes:")
    for name in attributes:
        click.echo(f"  {name}: {_shape_of(getattr(model, name))}")


def _shape_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {tuple(value.shape)}"
    if isinstance(value, list):
        return f"list of {len(value)}"
    return repr(value)


DEMO_FILES = {
    "table": "selection.csv",
    "model": "faithful.emkit",
    "responsibilities": "responsibilities.png",
    "em_steps": "em_steps.png",
    "log_likelihood": "log_likelihood.png",
    "selection": "bic.png",
}


def _demo_folder(folder: Path, force: bool) -> Path:
    """``folder``, or with earlier demo files in it and no ``force``, a new ``run-N`` in it."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out-dir {folder}: is a file, not a folder")
    if force or not any((folder / name).exists() for name in DEMO_FILES.values()):
        return folder
    number = 2
    while (folder / f"run-{number}").exists():
        number += 1
    return folder / f"run-{number}"


@main.command()
@click.option(
    "--out-dir",
    default="emkit-demo",
    show_default=True,
    metavar="DIR",
    help="Folder for the pictures, the table and the model (created; a new run-N "
    "subfolder when it holds an earlier run, unless --force).",
)
@click.option(
    "--max-components",
    type=click.IntRange(min=1, max=20),
    default=6,
    show_default=True,
    help="Try 1 to this many components.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@_force_option
def demo(out_dir: str, max_components: int, seed: int, force: bool) -> None:
    """Choose a Gaussian mixture for Old Faithful by BIC and draw EM at work."""
    start = time.perf_counter()
    folder = _demo_folder(Path(out_dir), force)
    paths = {key: folder / name for key, name in DEMO_FILES.items()}
    _require_matplotlib()
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    from emkit.datasets import load_faithful
    from emkit.io import save
    from emkit.plot import (
        plot_em_steps,
        plot_log_likelihood,
        plot_responsibilities,
        plot_selection,
    )

    faithful = load_faithful()
    X, names = faithful.data, faithful.feature_names
    data = _estimator_input(X, names)
    click.echo(
        f"Old Faithful (Azzalini and Bowman, 1990): {X.shape[0]} eruptions, "
        f"{' and '.join(names)} in minutes\n"
    )
    # On 272 rows, starting parallel threads (for the k-means initialisation) costs more
    # than it saves.
    with threadpool_limits(limits=1):
        result = _run_selection(
            data,
            list(range(1, max_components + 1)),
            list(COVARIANCE_TYPES),
            "bic",
            seed,
            False,
            n_init=2,
        )
    click.echo(result.to_text())
    best = result.best_estimator_
    params = result.best_params_
    click.echo(
        f"\nBIC chooses {params['n_components']} component(s) with "
        f"{params['covariance_type']} covariance:"
    )
    for line in _describe_mixture(best):
        click.echo(line)

    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(
        list(result.results_[0]),
        ([row[key] for key in row] for row in result.results_),
        paths["table"],
    )
    save(best, paths["model"], overwrite=True)
    _save_figure(plot_responsibilities(best, data).figure, paths["responsibilities"])
    standardised = (X - X.mean(axis=0)) / X.std(axis=0)
    _save_figure(
        plot_em_steps(
            standardised,
            n_components=params["n_components"],
            covariance_type=params["covariance_type"],
            random_state=seed,
        ),
        paths["em_steps"],
    )
    trace = clone(best).set_params(init_params="random_from_data", n_init=1, tol=1e-6)
    trace_axes = plot_log_likelihood(trace.fit(data))
    trace_axes.set_title(
        f"EM from {params['n_components']} random points: {trace.n_iter_} iterations"
    )
    _save_figure(trace_axes.figure, paths["log_likelihood"])
    _save_figure(plot_selection(result).figure, paths["selection"])
    click.echo(f"\nwritten to {folder}/:")
    for path in paths.values():
        click.echo(f"  {path.name}")
    click.echo(f"done in {time.perf_counter() - start:.1f} s")
