"""GaussianMixture with missing values (NaN): time per EM iteration against complete data.

N rows of D dimensions from K clusters; three versions of the data: complete, 10% of the
rows missing one entry (D patterns), and 20% of the entries missing completely at random
(most rows incomplete, up to 2^D patterns: the worst case of the pattern grouping). Every
fit starts from the same means and runs a fixed number of iterations; reported: the median
time per iteration over ``--repeats`` fits, for each covariance structure and chunk size
(``auto``: the automatic size, which allows K·D² numbers per row when the data have missing
values). With ``--device cuda`` the data are PyTorch tensors on the GPU.

Usage::

    python benchmarks/bench_missing_values.py            # N = 100,000, D = 10, K = 5
    python benchmarks/bench_missing_values.py --quick    # N = 10,000
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from emkit import GaussianMixture


def make_problem(n: int, d: int, k: int, seed: int = 0):
    """Complete rows, the two incomplete versions, and the true centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    one_cell = X.copy()
    rows = np.flatnonzero(rng.random(n) < 0.1)
    one_cell[rows, rng.integers(0, d, len(rows))] = np.nan
    cells = X.copy()
    cells[rng.random(X.shape) < 0.2] = np.nan
    empty = np.flatnonzero(np.isnan(cells).all(axis=1))
    cells[empty, 0] = X[empty, 0]
    return {"complete": X, "10% rows, 1 cell": one_cell, "20% cells": cells}, centres


def time_per_iteration(X, centres, covariance_type, chunk_size, iterations, repeats, convert):
    """Median seconds per iteration (the initial E-step included in the count)."""
    times = []
    for _ in range(repeats):
        model = GaussianMixture(
            len(centres), covariance_type=covariance_type, means_init=centres,
            max_iter=iterations, tol=0.0, chunk_size=chunk_size,
        )
        data = convert(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(data)
            times.append((time.perf_counter() - start) / (iterations + 1))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="'cpu' (NumPy) or a torch device")
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    n = 10_000 if options.quick else options.n
    data, centres = make_problem(n, options.d, options.k)
    if options.device == "cpu":
        def convert(X):
            return X
    else:
        import torch

        def convert(X):
            return torch.from_numpy(X).to(options.device)

    print(f"N = {n}, D = {options.d}, K = {options.k}, {options.iterations} iterations, "
          f"device {options.device}; milliseconds per iteration")
    chunk_sizes = (None, 8192)
    header = "  ".join(f"{'auto' if c is None else c:>8}" for c in chunk_sizes)
    for covariance_type in ("full", "tied", "diag", "spherical"):
        print(f"\n{covariance_type:10s} {'':18s} {header}")
        for name, X in data.items():
            cells = "  ".join(
                f"{1e3 * time_per_iteration(X, centres, covariance_type, c, options.iterations, options.repeats, convert):8.1f}"  # noqa: E501
                for c in chunk_sizes
            )
            print(f"{'':10s} {name:18s} {cells}")


if __name__ == "__main__":
    main()
