"""A mixture of Bernoulli distributions on binarised hand-written digits (Bishop, figure 9.10).

Bishop (2006, §9.3.3) fits K = 3 multivariate Bernoulli components to binarised images of the
digits 2, 3 and 4 and shows the mean image of each component: without any label, EM finds one
component per digit. Here the images are scikit-learn's 8 × 8 ``load_digits`` (pixel values
0–16, set to 1 above ``--threshold``). The top row of the figure shows examples of the
training images, the bottom row the component means θ_k with their weights π_k; the agreement
between components and digits is printed.

Usage::

    python examples/bernoulli_digits.py digits.png
    python examples/bernoulli_digits.py digits.png --digits 0 1 2 3 4 5 6 7 8 9 --force
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from emkit import BernoulliMixture


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where to save the figure (PNG, PDF, ...)")
    parser.add_argument(
        "--digits", type=int, nargs="+", default=[2, 3, 4], metavar="D",
        help="digits to keep; one component per digit (default: 2 3 4, as Bishop)",
    )
    parser.add_argument(
        "--threshold", type=float, default=7.0,
        help="pixel values (0-16) above it become 1 (default: 7)",
    )
    parser.add_argument("--n-init", type=int, default=5, help="EM restarts (default: 5)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    arguments = parser.parse_args(argv)
    if arguments.output.exists() and not arguments.force:
        parser.error(f"{arguments.output} exists; pass --force to overwrite it")
    if not set(arguments.digits) <= set(range(10)) or len(set(arguments.digits)) < 2:
        parser.error("--digits takes at least two distinct digits between 0 and 9")
    return arguments


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digits = load_digits()
    keep = np.isin(digits.target, arguments.digits)
    images, labels = digits.data[keep], digits.target[keep]
    n_components = len(set(arguments.digits))
    model = BernoulliMixture(
        n_components, binarize=arguments.threshold, n_init=arguments.n_init,
        random_state=arguments.random_state,
    ).fit(images)
    assigned = model.predict(images)
    print(
        f"{len(images)} images of the digits {sorted(set(arguments.digits))}, K = "
        f"{n_components}: {model.n_iter_} iterations, log-likelihood per image "
        f"{model.lower_bound_:.3f}, adjusted Rand index against the digits "
        f"{adjusted_rand_score(labels, assigned):.3f}"
    )
    order = np.argsort([np.bincount(labels[assigned == k], minlength=10).argmax()
                        for k in range(n_components)])
    for k in order:
        counts = np.bincount(labels[assigned == k], minlength=10)
        print(f"  component {k}: weight {model.weights_[k]:.3f}, mostly digit "
              f"{counts.argmax()} ({counts.max()} of {counts.sum()} images)")

    binary = images > arguments.threshold
    figure, axes = plt.subplots(
        2, n_components, figsize=(max(5.0, 1.8 * n_components), 4.0), layout="constrained",
        squeeze=False,
    )
    rng = np.random.default_rng(arguments.random_state)
    for column, k in enumerate(order):
        example = rng.choice(np.flatnonzero(assigned == k))
        axes[0, column].imshow(binary[example].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[0, column].set_title(f"a digit {labels[example]}", fontsize=9)
        axes[1, column].imshow(model.means_[k].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[1, column].set_title(f"θ_{k}, π = {model.weights_[k]:.2f}", fontsize=9)
    for axis in axes.ravel():
        axis.set_axis_off()
    figure.suptitle("Binarised digits (top) and the component means (bottom)", fontsize=10)
    figure.savefig(arguments.output, dpi=120)
    print(f"Saved {arguments.output}")


if __name__ == "__main__":
    main()
