"""The ``emkit`` command, driven as a user would: CliRunner and a real subprocess."""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from click.testing import CliRunner

from emkit import GaussianMixture
from emkit.cli import main, parse_components
from emkit.datafiles import read_data
from emkit.datasets import load_faithful
from emkit.io import load, read_metadata

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.vstack([c + rng.normal(size=(60, 2)) for c in centres])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data files in every supported format, and a fitted model."""
    folder = tmp_path_factory.mktemp("data")
    faithful = load_faithful()
    X = faithful.data
    paths = {"folder": folder}
    header = ",".join(faithful.feature_names)
    paths["csv"] = folder / "faithful.csv"
    np.savetxt(paths["csv"], X, delimiter=",", header=header, comments="", fmt="%.10g")
    paths["tsv"] = folder / "faithful.tsv"
    np.savetxt(paths["tsv"], X, delimiter="\t", fmt="%.10g")
    paths["npy"] = folder / "faithful.npy"
    np.save(paths["npy"], X)
    paths["blobs"] = folder / "blobs.csv"
    np.savetxt(paths["blobs"], _blobs(), delimiter=",", header="x,y", comments="", fmt="%.10g")
    paths["model"] = folder / "faithful.emkit"
    result = CliRunner().invoke(
        main, ["fit", str(paths["csv"]), "-k", "2", "--seed", "0", "--out", str(paths["model"])]
    )
    assert result.exit_code == 0, result.output
    return paths


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args, input=None):
    return runner.invoke(main, [str(a) for a in args], input=input)


def ok(result):
    assert result.exit_code == 0, result.output
    assert isinstance(result.exception, SystemExit | type(None))
    return result


def user_error(result, fragment, code=1):
    """Assert that the command failed with one line ``emkit: error: ...`` naming ``fragment``."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("emkit: error: "), result.stderr
    assert fragment in last, last
    assert "Traceback" not in result.output
    assert sum(line.startswith("emkit: error") for line in result.stderr.splitlines()) == 1
    return last


# --------------------------------------------------------------------------------- fit


def test_fit_writes_a_model(runner, files, tmp_path):
    out = tmp_path / "m.emkit"
    result = ok(invoke(runner, "fit", files["csv"], "-k", "2", "--seed", "0", "--out", out))
    assert "converged" in result.stdout
    assert "component 1: weight" in result.stdout
    assert f"model written to {out}" in result.stdout
    model = load(out)
    assert isinstance(model, GaussianMixture)
    assert list(model.feature_names_in_) == ["eruptions", "waiting"]
    reference = GaussianMixture(2, random_state=0).fit(load_faithful().data)
    np.testing.assert_allclose(model.means_, reference.means_)


def test_fit_json(runner, files):
    result = ok(
        invoke(
            runner,
            "fit",
            files["csv"],
            "-k",
            "2",
            "--covariance-type",
            "diag",
            "--seed",
            "1",
            "--max-iter",
            "200",
            "--tol",
            "1e-6",
            "--n-init",
            "2",
            "--reg-covar",
            "1e-5",
            "--init-params",
            "k-means++",
            "--json",
        )
    )
    payload = json.loads(result.stdout)
    assert payload["n_samples"] == 272 and payload["n_features"] == 2
    assert payload["feature_names"] == ["eruptions", "waiting"]
    params = payload["params"]
    assert params["covariance_type"] == "diag" and params["n_init"] == 2
    assert params["max_iter"] == 200 and params["tol"] == 1e-6 and params["reg_covar"] == 1e-5
    assert params["init_params"] == "k-means++" and params["random_state"] == 1
    assert np.array(payload["covariances"]).shape == (2, 2)
    assert sum(payload["weights"]) == pytest.approx(1.0)
    assert payload["out"] is None
    assert payload["converged"] is True


def test_fit_seed_makes_it_reproducible(runner, files):
    args = ("fit", files["csv"], "-k", "3", "--init-params", "random", "--seed", "4", "--json")
    first = json.loads(ok(invoke(runner, *args)).stdout)
    second = json.loads(ok(invoke(runner, *args)).stdout)
    assert first["means"] == second["means"]


@pytest.mark.parametrize("kind", ["tsv", "npy"])
def test_fit_other_formats(runner, files, kind):
    payload = json.loads(ok(invoke(runner, "fit", files[kind], "-k", "2", "--json")).stdout)
    assert payload["n_samples"] == 272
    assert payload["feature_names"] is None


def test_fit_parquet(runner, files, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = load_faithful().data
    path = tmp_path / "faithful.parquet"
    table = pa.table(
        {
            "eruptions": X[:, 0],
            "waiting": X[:, 1].astype(np.int64),
            "site": ["old faithful"] * len(X),
        }
    )
    pq.write_table(table, path)
    result = invoke(runner, "fit", path, "--columns", "eruptions,waiting", "--json")
    payload = json.loads(ok(result).stdout)
    assert payload["feature_names"] == ["eruptions", "waiting"]
    user_error(invoke(runner, "fit", path), "column 'site' holds string, not numbers")
    pa_nulls = pa.table({"a": pa.array([1.0, None, 3.0]), "b": [1.0, 2.0, 3.0]})
    pq.write_table(pa_nulls, tmp_path / "nulls.parquet")
    user_error(invoke(runner, "fit", tmp_path / "nulls.parquet"), "row 1, column 'a'")


def test_parquet_without_pyarrow(runner, files, tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    user_error(invoke(runner, "fit", path), "needs pyarrow")


def test_fit_from_stdin_without_header(runner):
    text = "\n".join(f"{x:.6f} {y:.6f}" for x, y in _blobs()) + "\n"
    payload = json.loads(ok(invoke(runner, "fit", "-", "-k", "3", "--json", input=text)).stdout)
    assert payload["n_samples"] == 180
    assert payload["data"] == "<stdin>"


@pytest.mark.parametrize(
    ("text", "columns", "names", "first"),
    [
        ("a;b;c\n1;2;3\n4;5;6\n7;8;10\n", None, ["a", "b", "c"], [1, 2, 3]),
        ("a|b\n1|2\n3|4\n5|7\n", None, ["a", "b"], [1, 2]),
        ("1\t2\n3\t4\n5\t7\n", None, None, [1, 2]),
        ('"name","x","y"\n"p",1,2\n"q",3,4\n"r",5,7\n', "x,y", ["x", "y"], [1, 2]),
        ("name,x,y\np,1,2\nq,3,4\nr,5,7\n", "1,-1", ["x", "y"], [1, 2]),
        ("x,y\n# a comment\n\n1,2\n3,4\n5,7\n", "y", ["y"], [2]),
        ("1\n2\n3\n", None, None, [1]),
    ],
)
def test_read_data_sniffs_delimiters_and_headers(tmp_path, text, columns, names, first):
    path = tmp_path / "data.csv"
    path.write_text(text)
    table = read_data(str(path), columns)
    assert table.names == names
    np.testing.assert_array_equal(table.values[0], first)
    assert table.values.dtype == np.float64


def test_fit_plot(runner, files, tmp_path):
    picture = tmp_path / "fit.png"
    result = ok(invoke(runner, "fit", files["csv"], "-k", "2", "--plot", picture))
    assert picture.read_bytes().startswith(PNG_MAGIC)
    assert "picture written" in result.stdout
    assert result.stderr == ""


def test_fit_plot_with_one_feature(runner, files, tmp_path):
    picture = tmp_path / "fit.svg"
    ok(invoke(runner, "fit", files["csv"], "--columns", "waiting", "-k", "2", "--plot", picture))
    assert picture.read_text().lstrip().startswith("<?xml")


def test_fit_progress_bar(runner, files, tmp_path):
    out = tmp_path / "m.emkit"
    ok(invoke(runner, "fit", files["csv"], "-k", "2", "--progress", "--out", out))
    assert load(out).callbacks is None


def test_fit_reports_warnings_on_one_line(runner, files):
    result = ok(invoke(runner, "fit", files["csv"], "-k", "3", "--max-iter", "1", "--tol", "0"))
    assert "did NOT converge" in result.stdout
    warning_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert warning_lines and all(line.startswith("emkit: warning: ") for line in warning_lines)


# ----------------------------------------------------------------------- predict, score


def test_predict_labels(runner, files):
    result = ok(invoke(runner, "predict", files["model"], files["csv"]))
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["label"] and len(rows) == 273
    model = load(files["model"])
    expected = model.predict(load_faithful(as_frame=True).frame)
    np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], expected)


def test_predict_proba_to_file(runner, files, tmp_path):
    out = tmp_path / "p.csv"
    result = ok(invoke(runner, "predict", files["model"], files["csv"], "--proba", "--out", out))
    assert result.stdout == ""
    assert "272 rows written" in result.stderr
    probabilities = np.loadtxt(out, delimiter=",", skiprows=1)
    assert out.read_text().startswith("p0,p1\n")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    user_error(
        invoke(runner, "predict", files["model"], files["csv"], "--out", out),
        "already exists; use --force",
    )
    ok(invoke(runner, "predict", files["model"], files["csv"], "--out", out, "--force"))
    assert out.read_text().startswith("label\n")


def test_predict_matches_columns_by_name(runner, files, tmp_path):
    X = load_faithful().data
    path = tmp_path / "shuffled.csv"
    with path.open("w") as stream:
        stream.write("id,waiting,eruptions\n")
        for i, (e, w) in enumerate(X):
            stream.write(f"{i},{w},{e}\n")
    shuffled = ok(invoke(runner, "predict", files["model"], path)).stdout
    original = ok(invoke(runner, "predict", files["model"], files["csv"])).stdout
    assert shuffled == original


def test_predict_data_without_header_is_positional(runner, files):
    by_position = ok(invoke(runner, "predict", files["model"], files["tsv"])).stdout
    assert by_position == ok(invoke(runner, "predict", files["model"], files["csv"])).stdout


def test_score(runner, files):
    payload = json.loads(ok(invoke(runner, "score", files["model"], files["csv"], "--json")).stdout)
    model = load(files["model"])
    frame = load_faithful(as_frame=True).frame
    assert payload["mean_log_likelihood"] == pytest.approx(model.score(frame))
    assert payload["bic"] == pytest.approx(model.bic(frame))
    assert payload["n_samples"] == 272
    text = ok(invoke(runner, "score", files["model"], files["npy"])).stdout
    assert "mean log-likelihood per sample: -4.155" in text


# ----------------------------------------------------------------------- sample, info


def test_sample(runner, files, tmp_path):
    first = ok(invoke(runner, "sample", files["model"], "-n", "5", "--seed", "1")).stdout
    assert first == ok(invoke(runner, "sample", files["model"], "-n", "5", "--seed", "1")).stdout
    rows = list(csv.reader(io.StringIO(first)))
    assert rows[0] == ["eruptions", "waiting"] and len(rows) == 6
    out = tmp_path / "s.csv"
    ok(invoke(runner, "sample", files["model"], "--n-samples", "50", "--labels", "--out", out))
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table.shape == (50, 3) and set(table[:, 2]) <= {0.0, 1.0}


def test_info(runner, files):
    text = ok(invoke(runner, "info", files["model"])).stdout
    assert "format: emkit-model version 1" in text
    assert "estimator: emkit.models.gaussian_mixture.GaussianMixture" in text
    assert "features: eruptions, waiting" in text
    assert "means_: array float64 (2, 2)" in text
    payload = json.loads(ok(invoke(runner, "info", files["model"], "--json")).stdout)
    assert payload["params"]["n_components"] == 2
    assert payload["fitted"] is True and payload["feature_names"] == ["eruptions", "waiting"]
    assert len(payload["weights"]) == 2


def test_info_unfitted(runner, tmp_path):
    path = GaussianMixture(3)
    from emkit.io import save

    save(path, tmp_path / "u.emkit")
    assert "not fitted" in ok(invoke(runner, "info", tmp_path / "u.emkit")).stdout


# ----------------------------------------------------------------------------- select


def test_select_finds_three_blobs(runner, files, tmp_path):
    out, picture = tmp_path / "best.emkit", tmp_path / "bic.png"
    result = ok(
        invoke(
            runner,
            "select",
            files["blobs"],
            "--n-components",
            "1-5",
            "--covariance-type",
            "full,diag",
            "--seed",
            "0",
            "--out",
            out,
            "--plot",
            picture,
        )
    )
    assert "best by BIC: 3 component(s)" in result.stdout
    assert load(out).n_components == 3
    assert picture.read_bytes().startswith(PNG_MAGIC)
    lines = [line for line in result.stdout.splitlines() if line.startswith("*")]
    assert len(lines) == 1 and lines[0].split()[1] == "3"


def test_select_json(runner, files):
    result = ok(
        invoke(
            runner,
            "select",
            files["blobs"],
            "-k",
            "2,3,4",
            "--covariance-type",
            "spherical",
            "--criterion",
            "aic",
            "--seed",
            "0",
            "--json",
        )
    )
    payload = json.loads(result.stdout)
    assert [row["n_components"] for row in payload["table"]] == [2, 3, 4]
    assert payload["criterion"] == "aic"
    assert payload["best"]["n_components"] == 3
    assert payload["best"]["covariance_type"] == "spherical"


def test_parse_components():
    assert parse_components("1-9") == list(range(1, 10))
    assert parse_components("2,4,8") == [2, 4, 8]
    assert parse_components("1-3,5, 3") == [1, 2, 3, 5]


# ------------------------------------------------------------------------------- demo


def test_demo(runner, tmp_path):
    folder = tmp_path / "demo"
    result = ok(invoke(runner, "demo", "--out-dir", folder, "--max-components", "3"))
    assert "BIC chooses 2 component(s)" in result.stdout
    for name in ("responsibilities.png", "em_steps.png", "log_likelihood.png", "bic.png"):
        assert (folder / name).read_bytes().startswith(PNG_MAGIC)
    assert load(folder / "faithful.emkit").n_components == 2
    assert (folder / "selection.csv").read_text().startswith("n_components,covariance_type")
    before = (folder / "bic.png").read_bytes()
    again = ok(invoke(runner, "demo", "--out-dir", folder, "--max-components", "2"))
    assert f"written to {folder / 'run-2'}/" in again.stdout
    assert (folder / "run-2" / "bic.png").read_bytes().startswith(PNG_MAGIC)
    assert (folder / "bic.png").read_bytes() == before


def test_demo_force_and_bad_folder(runner, tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "bic.png").write_bytes(b"old")
    (folder / "notes.txt").write_text("mine")
    ok(invoke(runner, "demo", "--out-dir", folder, "--max-components", "2", "--force"))
    assert (folder / "bic.png").read_bytes().startswith(PNG_MAGIC)
    assert (folder / "notes.txt").read_text() == "mine"
    user_error(invoke(runner, "demo", "--out-dir", folder / "notes.txt"), "is a file")


# ------------------------------------------------------------------------ user errors


def test_missing_data_file(runner, tmp_path):
    user_error(invoke(runner, "fit", tmp_path / "absent.csv"), "absent.csv: no such file")


def test_data_is_a_directory(runner, tmp_path):
    user_error(invoke(runner, "fit", tmp_path), "is a directory")


def test_missing_model_file(runner, files, tmp_path):
    user_error(
        invoke(runner, "predict", tmp_path / "absent.emkit", files["csv"]), "no such model file"
    )
    user_error(invoke(runner, "info", tmp_path / "absent.emkit"), "no such model file")


def test_not_a_model_file(runner, files):
    user_error(invoke(runner, "score", files["csv"], files["csv"]), "not an emkit model file")


def test_tampered_model_file(runner, files, tmp_path):
    data = bytearray(files["model"].read_bytes())
    path = tmp_path / "cut.emkit"
    path.write_bytes(bytes(data[: len(data) // 2]))
    user_error(invoke(runner, "info", path), "not an emkit model file")


def test_future_model_file(runner, files, tmp_path):
    import zipfile

    path = tmp_path / "future.emkit"
    with zipfile.ZipFile(files["model"]) as old, zipfile.ZipFile(path, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            if name == "metadata.json":
                metadata = json.loads(data)
                metadata["format_version"] = 99
                data = json.dumps(metadata)
            new.writestr(name, data)
    user_error(invoke(runner, "predict", path, files["csv"]), "Upgrade emkit")


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ("nope", "no column named 'nope' (columns are eruptions, waiting)"),
        ("5", "column index 5 is out of range"),
        ("waiting,waiting", "names a column twice"),
        ("waiting,", "has an empty entry"),
    ],
)
def test_bad_columns(runner, files, columns, fragment):
    user_error(invoke(runner, "fit", files["csv"], "--columns", columns), fragment)


def test_column_name_without_header(runner, files):
    user_error(invoke(runner, "fit", files["tsv"], "--columns", "waiting"), "no header")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a,b\n1,2\n3,x\n5,6\n", "line 3, column 1 ('b'): 'x' is not a number"),
        ("a,b\n1,2\n3,\n5,6\n", "line 3, column 1 ('b'): empty cell"),
        ("a,b\n1,2\n3,inf\n5,6\n", "line 3, column 1 ('b'): 'inf' is not a finite number"),
        ("a,b\n1,2\nnan,4\n5,6\n", "line 3, column 0 ('a'): 'nan' is not a finite number"),
        ("1,2\n3,4\n5,6,7\n", "line 3: 3 fields where the first line has 2"),
        ("", "no data (the file is empty)"),
        ("a,b\n", "no data rows after the header"),
        ("a,a\n1,2\n", "column name 'a' appears twice"),
    ],
)
def test_bad_cells(runner, tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    user_error(invoke(runner, "fit", path), fragment)


def test_bad_cell_from_stdin(runner):
    user_error(
        invoke(runner, "fit", "-", input="1 2\n3 4\n5 six\n"),
        "<stdin>, line 3, column 1: 'six' is not a number",
    )


def test_not_utf8(runner, tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    user_error(invoke(runner, "fit", path), "not a UTF-8 text file")


def test_bad_npy(runner, tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    user_error(invoke(runner, "fit", path), "cannot read this .npy file")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    user_error(invoke(runner, "fit", tmp_path / "cube.npy"), "2-dimensional")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [2.0, 3.0]]))
    user_error(invoke(runner, "fit", tmp_path / "nan.npy"), "row 0, column 1: nan")


def test_model_expects_other_columns(runner, files, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    user_error(invoke(runner, "predict", files["model"], path), "no column named 'eruptions'")
    user_error(
        invoke(runner, "predict", files["model"], path, "--columns", "a"),
        "1 column(s) selected but the model expects 2",
    )


def test_estimator_value_error(runner, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("1,2\n3,4\n5,7\n")
    last = user_error(invoke(runner, "fit", path, "-k", "5"), "n_components")
    assert "\n" not in last


@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_existing_output_without_force(runner, files, tmp_path, option):
    target = tmp_path / "taken.png"
    target.write_bytes(b"keep me")
    user_error(invoke(runner, "fit", files["csv"], option, target), "use --force")
    assert target.read_bytes() == b"keep me"
    ok(invoke(runner, "fit", files["csv"], option, target, "--force"))
    assert target.read_bytes() != b"keep me"


def test_model_to_stdout_is_refused(runner, files):
    user_error(invoke(runner, "fit", files["csv"], "--out", "-"), "cannot go to standard output")
    assert ok(invoke(runner, "sample", files["model"], "-n", "2", "--out", "-")).stdout


def test_output_in_missing_folder(runner, files, tmp_path):
    user_error(
        invoke(runner, "fit", files["csv"], "--out", tmp_path / "no" / "m.emkit"), "does not exist"
    )


def test_bad_image_format(runner, files, tmp_path):
    user_error(
        invoke(runner, "fit", files["csv"], "--plot", tmp_path / "x.docx"),
        "unknown image format 'docx'",
    )


def test_plot_without_matplotlib(runner, files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    user_error(
        invoke(runner, "fit", files["csv"], "--plot", tmp_path / "x.png"),
        "pip install 'emkit[plot]'",
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("fit", "data.csv", "--bogus"), "No such option"),
        (("fit", "data.csv", "-k", "0"), "0 is not in the range x>=1"),
        (("fit", "data.csv", "--covariance-type", "round"), "'round' is not one of"),
        (("fit", "data.csv", "--model", "hmm"), "'hmm' is not"),
        (("fit", "data.csv", "--max-iter", "ten"), "'ten' is not a valid integer"),
        (("fit",), "Missing argument 'DATA'"),
        (("select", "data.csv", "-k", "5-2"), "'5-2' is not a list of numbers"),
        (("select", "data.csv", "-k", "0-2"), "at least 1"),
        (("select", "data.csv", "--covariance-type", "full,round"), "'round' is not a covar"),
        (("select", "data.csv", "--criterion", "bix"), "'bix' is not one of"),
        (("sample", "m.emkit", "-n", "-3"), "-3 is not in the range"),
        (("frobnicate",), "No such command 'frobnicate'"),
    ],
)
def test_bad_options(runner, args, fragment):
    last = user_error(invoke(runner, *args), fragment, code=2)
    assert "--help" in last


def test_no_command(runner):
    result = invoke(runner)
    assert result.exit_code == 2
    assert "Commands:" in result.stdout
    assert result.stderr.strip() == "emkit: error: missing command"


def test_help_and_version(runner):
    assert "fit" in ok(invoke(runner, "--help")).stdout
    assert "--n-components" in ok(invoke(runner, "fit", "--help")).stdout
    assert ok(invoke(runner, "--version")).stdout.startswith("emkit, version")


# ------------------------------------------------------------------ the real console script


def _console_script() -> str:
    candidate = Path(sys.executable).with_name("emkit")
    found = str(candidate) if candidate.exists() else shutil.which("emkit")
    assert found, "the emkit console script is not installed"
    return found


def test_console_script(files, tmp_path):
    script = _console_script()
    out = tmp_path / "m.emkit"
    done = subprocess.run(
        [script, "fit", str(files["csv"]), "-k", "2", "--seed", "0", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["out"] == str(out)
    assert read_metadata(out)["estimator"].startswith("emkit.")
    failed = subprocess.run(
        [script, "predict", str(out), str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.strip().splitlines() == [
        f"emkit: error: {tmp_path}/missing.csv: no such file"
    ]
