"""Bayesian curve fitting of a noisy sine, with precisions fitted by EM.

A toy problem like Bishop's figure 3.8 (PRML §3.3): targets
``t = sin(2 pi x) + noise`` (noise standard deviation 0.3), a basis of cubic B-splines
(scikit-learn's ``SplineTransformer``) in a pipeline with ``BayesianLinearRegression``.
Unlike the figure, the weight precision alpha and the noise precision beta are not given:
EM estimates them by maximising the evidence. Each panel shows the predictive mean and
one predictive standard deviation for a growing number of observations.

The B-splines sum to one, so the constant is already in their span: the basis drops one
spline (``include_bias=False``) and the intercept is left to the estimator
(``fit_intercept=True``), which fits it by centring without putting a prior on it.

Usage::

    python examples/bayesian_polynomial_regression.py [OUTPUT.png] [--overwrite]

The figure goes to ``OUTPUT.png`` (by default ``bayesian_polynomial_regression.png`` in an
``emkit_examples_output`` folder of the temporary directory). An existing file is never
replaced unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from emkit import BayesianLinearRegression

NOISE_STD = 0.3
SAMPLE_SIZES = (8, 15, 30, 100)
DEFAULT_OUTPUT = (
    Path(tempfile.gettempdir()) / "emkit_examples_output" / "bayesian_polynomial_regression.png"
)


def make_model():
    """Nine cubic B-splines on [0, 1] followed by Bayesian linear regression.

    The knots are fixed (not taken from the range of the training data), so that every
    fit uses the same basis functions.
    """
    knots = np.linspace(0.0, 1.0, 8)[:, None]
    return make_pipeline(
        SplineTransformer(knots=knots, degree=3, include_bias=False),
        BayesianLinearRegression(fit_intercept=True, max_iter=2000),
    )


def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of the noisy sine, with x uniform on [0, 1]."""
    x = rng.uniform(0.0, 1.0, size=n)
    return x[:, None], np.sin(2 * np.pi * x) + NOISE_STD * rng.normal(size=n)


def plot(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x_all, t_all = sample(max(SAMPLE_SIZES), rng)
    grid = np.linspace(0.0, 1.0, 200)[:, None]
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharex=True, sharey=True)
    for ax, n in zip(axes.ravel(), SAMPLE_SIZES, strict=True):
        model = make_model().fit(x_all[:n], t_all[:n])
        regression = model[-1]
        mean, std = model.predict(grid, return_std=True)
        ax.plot(grid[:, 0], np.sin(2 * np.pi * grid[:, 0]), color="tab:green", label="sin(2πx)")
        ax.fill_between(
            grid[:, 0], mean - std, mean + std, color="tab:red", alpha=0.2, label="± 1 std"
        )
        ax.plot(grid[:, 0], mean, color="tab:red", label="predictive mean")
        ax.scatter(x_all[:n, 0], t_all[:n], facecolors="none", edgecolors="tab:blue", zorder=3)
        ax.set_title(
            f"N = {n}: α = {regression.alpha_:.3g}, 1/√β = {1 / np.sqrt(regression.beta_):.3g}"
            f" ({regression.n_iter_} iterations)",
            fontsize=9,
        )
        ax.set_ylim(-2.0, 2.0)
        print(
            f"N={n:3d}  alpha={regression.alpha_:.4g}  beta={regression.beta_:.4g}  "
            f"noise std={1 / np.sqrt(regression.beta_):.3f} (true {NOISE_STD})  "
            f"log evidence={regression.scores_[-1]:.3f}"
        )
    axes[0, 0].legend(loc="lower left", fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("t")
    fig.suptitle("Bayesian linear regression on 9 B-splines, α and β fitted by EM")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output", nargs="?", type=Path, default=DEFAULT_OUTPUT,
        help=f"where to save the figure (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the output file if it exists"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the toy data")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.overwrite:
        parser.error(f"{args.output} exists; pass --overwrite to replace it")
    plot(args.output, args.seed)
    print(f"Figure saved to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
