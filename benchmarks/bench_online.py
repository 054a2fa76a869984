"""Online EM against batch EM: time to come within ``--gap`` of the batch optimum.

Both start from the same parameters (one scikit-learn iteration on 20,000 rows). Batch EM
(:meth:`GaussianMixture.fit`) runs until the mean log-likelihood changes by less than
``--tol``; its last value is the batch optimum, and the time at which each iteration's
log-likelihood became known is recorded by a callback. Online EM
(:meth:`GaussianMixture.partial_fit`, one call per mini-batch of ``--batch`` rows) makes
one pass; its parameters are copied every ``--every`` mini-batches, and each copy is scored
on all the data afterwards, outside the timing. The script prints, for each, the time to
reach the optimum minus ``--gap`` (per sample), and the final gap.

Usage::

    python benchmarks/bench_online.py            # 5,000,000 rows, D = 16, K = 16, diag
    python benchmarks/bench_online.py --quick    # 200,000 rows, D = 8, K = 8: a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

from emkit import GaussianMixture

FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def make_problem(n: int, d: int, k: int, seed: int = 0):
    """Rows from K diagonal Gaussians in random order, and common starting parameters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    weights = rng.dirichlet(np.full(k, 5.0))
    X = np.empty((n, d))
    step = 1_000_000
    for start in range(0, n, step):
        size = min(step, n - start)
        labels = rng.choice(k, size=size, p=weights)
        X[start : start + size] = centres[labels] + rng.standard_normal((size, d)) * scales[
            labels
        ]
    starting = SKLearnGaussianMixture(
        k, covariance_type="diag", max_iter=1, init_params="random_from_data", random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        starting.fit(X[:20_000])
    init = {
        "weights_init": starting.weights_,
        "means_init": starting.means_,
        "precisions_init": starting.precisions_,
    }
    return X, init


def run_batch(X, init, tol: float, max_iter: int):
    """Batch EM; the elapsed time at which each iteration's log-likelihood was known."""
    times: list[float] = []
    start = time.perf_counter()
    model = GaussianMixture(
        len(init["weights_init"]), covariance_type="diag", tol=tol, max_iter=max_iter,
        callbacks=lambda info: times.append(time.perf_counter() - start), **init,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return model, np.array(times[1:])


def run_online(X, init, batch: int, every: int, decay: float, offset: float):
    """One pass of online EM; copies of the parameters with the time spent so far."""
    model = GaussianMixture(
        len(init["weights_init"]), covariance_type="diag", learning_decay=decay,
        learning_offset=offset, **init,
    )
    elapsed = 0.0
    snapshots = []
    starts = range(0, X.shape[0], batch)
    for step, start in enumerate(starts, 1):
        began = time.perf_counter()
        model.partial_fit(X[start : start + batch])
        elapsed += time.perf_counter() - began
        if step % every == 0 or step == len(starts):
            snapshots.append((elapsed, {name: getattr(model, name).copy() for name in FITTED}))
    return model, snapshots


def score_snapshot(model, values, X) -> float:
    for name, value in values.items():
        setattr(model, name, value)
    return float(model.score(X))


def first_time(times, scores, target) -> float:
    reached = np.flatnonzero(np.asarray(scores) >= target)
    return float(times[reached[0]]) if reached.size else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows, D = 8, K = 8")
    parser.add_argument("--n", type=int, default=None, help="rows (default 5,000,000)")
    parser.add_argument("--gap", type=float, default=1e-3, help="target gap per sample")
    parser.add_argument("--tol", type=float, default=1e-6, help="batch EM's tol")
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--batch", type=int, default=None,
                        help="online mini-batch rows (default 10,000; 2,000 with --quick)")
    parser.add_argument("--every", type=int, default=10, help="mini-batches between copies")
    parser.add_argument("--decay", type=float, default=0.7, help="learning_decay")
    parser.add_argument("--offset", type=float, default=10.0, help="learning_offset")
    args = parser.parse_args()
    n, d, k = (200_000, 8, 8) if args.quick else (5_000_000, 16, 16)
    n = args.n or n
    args.batch = args.batch or (2_000 if args.quick else 10_000)

    print(f"{n:,} rows, D = {d}, K = {k}, covariance_type='diag', float64")
    X, init = make_problem(n, d, k)

    batch, times = run_batch(X, init, args.tol, args.max_iter)
    optimum = batch.lower_bound_
    target = optimum - args.gap
    batch_time = first_time(times, batch.lower_bounds_, target)
    iterations = int(np.flatnonzero(np.asarray(batch.lower_bounds_) >= target)[0]) + 1
    print(f"batch EM:  optimum {optimum:.6f} per sample after {batch.n_iter_} iterations "
          f"({times[-1]:.1f} s, {times[-1] / len(times):.2f} s per iteration); within "
          f"{args.gap:g} after {iterations} iterations, {batch_time:.2f} s")

    online, snapshots = run_online(X, init, args.batch, args.every, args.decay, args.offset)
    scores = [score_snapshot(online, values, X) for _, values in snapshots]
    online_times = [elapsed for elapsed, _ in snapshots]
    online_time = first_time(online_times, scores, target)
    reached = f"after {online_time:.2f} s" if np.isfinite(online_time) else "not in one pass"
    print(f"online EM: one pass of {online.n_steps_} mini-batches of {args.batch:,} rows in "
          f"{online_times[-1]:.1f} s (learning_decay={args.decay}, "
          f"learning_offset={args.offset}); within {args.gap:g} {reached}; "
          f"final gap {optimum - scores[-1]:.2e}")
    if np.isfinite(online_time):
        print(f"time to within {args.gap:g}: batch / online = {batch_time / online_time:.1f}")


if __name__ == "__main__":
    main()
