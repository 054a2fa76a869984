"""Timings of the k-means family against scikit-learn and the ``kmedoids`` package.

Every comparison runs both implementations on the same data from the same start, in the
same process, alternately, ``--repeats`` times; the table shows the median of each time
and the median of the per-repeat ratios (emkit / reference: below 1 is faster).

* Lloyd: ``KMeans`` against ``sklearn.cluster.KMeans(algorithm="lloyd")``, exactly
  ``--iterations`` iterations (``tol=0``, random data that do not converge sooner) from the
  same centres; time per iteration, setup included.
* Mini-batch: ``OnlineKMeans`` against ``sklearn.cluster.MiniBatchKMeans``, one epoch of
  batches of 1024 from the same centres (no early stopping, final labels computed by
  both); time per batch step.
* k-medoids: ``KMedoids(method="pam")`` computing dissimilarities block by block against
  ``kmedoids.fasterpam`` on the precomputed matrix (its computation included); time and
  objective.

Usage::

    python benchmarks/bench_kmeans.py                  # N = 1,000,000, D = 16, K = 16
    python benchmarks/bench_kmeans.py --quick          # smaller sizes, a few seconds
    python benchmarks/bench_kmeans.py --only kmedoids  # one comparison (repeatable)

Each comparison draws its data from its own generator seeded with ``--seed``, so that its
data do not depend on which other comparisons run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import sklearn
from sklearn.cluster import KMeans as SKLearnKMeans
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import pairwise_distances

from emkit import KMeans, KMedoids, OnlineKMeans

COMPARISONS = ["lloyd", "minibatch", "kmedoids"]


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def lloyd(n, d, k, iterations, repeats, rng):
    X = rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]
    rows = []
    for _ in range(repeats):
        ours_time, ours = timed(
            lambda: KMeans(k, init=init, max_iter=iterations, tol=0.0).fit(X)
        )
        theirs_time, theirs = timed(
            lambda: SKLearnKMeans(
                k, init=init, n_init=1, max_iter=iterations, tol=0.0, algorithm="lloyd"
            ).fit(X)
        )
        if not ours.n_iter_ == theirs.n_iter_ == iterations:
            raise RuntimeError(f"runs stopped early: {ours.n_iter_}, {theirs.n_iter_}")
        np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-9)
        rows.append((ours_time / iterations, theirs_time / iterations))
    return rows


def minibatch(n, d, k, batch_size, repeats, rng):
    X = rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]
    rows = []
    for _ in range(repeats):
        ours_time, ours = timed(
            lambda: OnlineKMeans(
                k, init=init, batch_size=batch_size, max_iter=1, tol=0.0, random_state=0
            ).fit(X)
        )
        theirs_time, theirs = timed(
            lambda: MiniBatchKMeans(
                k, init=init, n_init=1, batch_size=batch_size, max_iter=1, tol=0.0,
                max_no_improvement=None, random_state=0,
            ).fit(X)
        )
        rows.append((ours_time / ours.n_steps_, theirs_time / theirs.n_steps_))
    return rows


def kmedoids_pam(n, d, k, repeats, rng):
    import kmedoids

    centres = rng.normal(scale=4.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    times, objectives = [], []
    for repeat in range(repeats):
        ours_time, ours = timed(
            lambda seed=repeat: KMedoids(k, method="pam", random_state=seed).fit(X)
        )
        theirs_time, theirs = timed(
            lambda seed=repeat: kmedoids.fasterpam(pairwise_distances(X), k, random_state=seed)
        )
        times.append((ours_time, theirs_time))
        objectives.append((ours.inertia_, float(theirs.loss)))
    return times, objectives


def summary(name, unit, rows):
    ours = statistics.median(r[0] for r in rows)
    theirs = statistics.median(r[1] for r in rows)
    ratio = statistics.median(r[0] / r[1] for r in rows)
    return f"| {name:<50} | {ours:>12.4g} {unit:<6} | {theirs:>12.4g} {unit:<6} | {ratio:>6.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a quick run")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", action="append", choices=COMPARISONS,
        help="run only this comparison (repeatable; default: all)",
    )
    arguments = parser.parse_args()
    only = arguments.only or COMPARISONS
    if arguments.quick:
        n, iterations, n_medoids_points = 100_000, 20, 1_000
    else:
        n, iterations, n_medoids_points = 1_000_000, 100, 5_000
    d, k = 16, 16
    warnings.simplefilter("ignore")

    print(
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"{os.cpu_count()} CPUs, median of {arguments.repeats} repeats\n"
    )
    print(f"| {'benchmark':<50} | {'emkit':>19} | {'reference':>19} | {'ratio':>6} |")
    print(f"|{'-' * 52}|{'-' * 21}|{'-' * 21}|{'-' * 8}|")
    if "lloyd" in only:
        rows = lloyd(n, d, k, iterations, arguments.repeats, np.random.default_rng(arguments.seed))
        print(summary(f"Lloyd, N={n:,} D={d} K={k}, {iterations} iterations", "s/iter", rows),
              flush=True)
    if "minibatch" in only:
        rows = minibatch(n, d, k, 1024, arguments.repeats, np.random.default_rng(arguments.seed))
        print(summary(f"mini-batch step, N={n:,} D={d} K={k}, batch 1024", "s/step", rows),
              flush=True)
    if "kmedoids" not in only:
        return
    try:
        times, objectives = kmedoids_pam(
            n_medoids_points, 8, 10, arguments.repeats, np.random.default_rng(arguments.seed)
        )
    except ImportError:
        print("| k-medoids: the kmedoids package is not installed (pip install kmedoids) |")
        return
    print(summary(f"k-medoids PAM time, N={n_medoids_points:,} D=8 K=10", "s", times))
    print(summary("k-medoids objective (vs FasterPAM)", "", objectives))


if __name__ == "__main__":
    main()
