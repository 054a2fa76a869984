"""VariationalGaussianMixture against scikit-learn's BayesianGaussianMixture in the same run.

Both start from the same initial responsibilities (scikit-learn's ``_initialize_parameters``
is overridden to use them) and run exactly ``--iterations`` VBEM iterations (``tol=0``).
For each case it prints the per-iteration time of each (median of ``--repeats`` runs,
alternating the two), their ratio, and the difference of the ELBO per sample of the two
final posteriors, both evaluated by emkit (a warm start with ``max_iter=0`` evaluates a
posterior: one E-step and the bound).

``--threads T`` limits BLAS to T threads for both and gives emkit ``n_jobs=T``: on a shared
or busy machine, ``--threads 1`` is the reproducible comparison (oversubscribed BLAS threads
slow scikit-learn's many small products far more than emkit's few large ones).

Usage::

    python benchmarks/bench_variational_gaussian_mixture.py              # the full table
    python benchmarks/bench_variational_gaussian_mixture.py --threads 1  # one core each
    python benchmarks/bench_variational_gaussian_mixture.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture
from threadpoolctl import threadpool_limits

from emkit import VariationalGaussianMixture

CASES = [(50_000, 16, 16, "full"), (50_000, 16, 16, "diag")]
QUICK_CASES = [(5_000, 8, 4, "full"), (5_000, 8, 4, "diag")]
POSTERIOR = (
    "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
    "weight_concentration_", "mean_precision_", "degrees_of_freedom_",
)


class FixedStart(BayesianGaussianMixture):
    """scikit-learn's estimator, started from given responsibilities."""

    _parameter_constraints = {  # noqa: RUF012 (scikit-learn's own convention)
        **BayesianGaussianMixture._parameter_constraints, "resp_init": ["array-like"],
    }

    def __init__(self, resp_init=None, **options):
        super().__init__(**options)
        self.resp_init = resp_init

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp_init)


def make_problem(n: int, d: int, k: int, seed: int = 0):
    """Blobs, and one-hot responsibilities of the nearest of k random rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    seeds = X[rng.choice(n, size=k, replace=False)]
    labels = ((X[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return X, np.eye(k)[labels]


def fit_once(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X)
        return time.perf_counter() - start


def elbo_of(posterior, evaluator: VariationalGaussianMixture, X) -> float:
    """ELBO per sample of ``posterior``'s fitted attributes, evaluated by the fitted
    ``evaluator`` (its attributes are replaced)."""
    evaluator.set_params(warm_start=True, max_iter=0)
    for name in POSTERIOR:
        setattr(evaluator, name, getattr(posterior, name))
    return float(evaluator.fit(X).lower_bound_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer iterations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads and n_jobs")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run(args)


def run(args) -> None:
    cases = QUICK_CASES if args.quick else CASES
    iterations = 10 if args.quick else args.iterations
    header = (
        f"{'N':>7} {'D':>3} {'K':>3} {'covariance':>10} {'sklearn s/it':>13} "
        f"{'emkit s/it':>11} {'ratio':>6} {'ELBO/sample emkit':>18} {'sklearn':>10} "
        f"{'difference':>11}"
    )
    print(header)
    print("-" * len(header))
    for n, d, k, kind in cases:
        X, resp = make_problem(n, d, k)
        options = dict(n_components=k, covariance_type=kind, max_iter=iterations, tol=0.0)
        times = {"sklearn": [], "emkit": []}
        for _ in range(args.repeats):
            theirs = FixedStart(resp_init=resp, **options)
            times["sklearn"].append(fit_once(theirs, X) / iterations)
            ours = VariationalGaussianMixture(resp_init=resp, n_jobs=args.threads, **options)
            times["emkit"].append(fit_once(ours, X) / iterations)
        sk_time = statistics.median(times["sklearn"])
        em_time = statistics.median(times["emkit"])
        em_elbo = ours.lower_bound_
        sk_elbo = elbo_of(theirs, ours, X)
        print(
            f"{n:>7} {d:>3} {k:>3} {kind:>10} {sk_time:>13.4f} {em_time:>11.4f} "
            f"{em_time / sk_time:>6.3f} {em_elbo:>18.10f} {sk_elbo:>10.6f} "
            f"{em_elbo - sk_elbo:>11.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
