"""Colour quantisation with k-means, after Bishop's figure 9.3 (§9.1.1).

Each pixel of scikit-learn's sample photograph 'china.jpg' is a point in RGB space; k-means
with K clusters replaces every pixel by the centre of its cluster, so the image is stored
as K colours (the code book) plus one index per pixel: lossy compression by vector
quantisation. The figure shows the original and the image for each K.

Usage::

    python examples/colour_quantisation.py quantised.png
    python examples/colour_quantisation.py quantised.png --clusters 2 3 10 --force
    python examples/colour_quantisation.py quantised.png --online
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from sklearn.datasets import load_sample_image

from emkit import KMeans, OnlineKMeans


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where to save the figure (PNG, PDF, ...)")
    parser.add_argument(
        "--clusters", type=int, nargs="+", default=[2, 3, 10], metavar="K",
        help="numbers of colours to quantise to (default: 2 3 10, as Bishop)",
    )
    parser.add_argument(
        "--online", action="store_true",
        help="fit by sequential mini-batch updates (OnlineKMeans) instead of Lloyd's algorithm",
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    arguments = parser.parse_args(argv)
    if arguments.output.exists() and not arguments.force:
        parser.error(f"{arguments.output} exists; pass --force to overwrite it")
    if min(arguments.clusters) < 1:
        parser.error("--clusters must be positive")
    return arguments


def quantise(pixels: np.ndarray, n_clusters: int, online: bool, random_state: int):
    """The pixels replaced by their cluster centre, and the fitted model."""
    if online:
        model = OnlineKMeans(n_clusters, batch_size=4096, random_state=random_state)
    else:
        model = KMeans(n_clusters, random_state=random_state)
    model.fit(pixels)
    return model.cluster_centers_[model.labels_], model


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = load_sample_image("china.jpg").astype(np.float64) / 255.0
    height, width, channels = image.shape
    pixels = image.reshape(-1, channels)
    original_bits = 24 * pixels.shape[0]

    panels = len(arguments.clusters) + 1
    figure, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.0), layout="constrained")
    axes[0].imshow(image)
    axes[0].set_title("Original image")
    for axis, n_clusters in zip(axes[1:], arguments.clusters, strict=True):
        quantised, model = quantise(pixels, n_clusters, arguments.online,
                                    arguments.random_state)
        bits = pixels.shape[0] * max(1, math.ceil(math.log2(n_clusters))) + 24 * n_clusters
        print(
            f"K = {n_clusters:3d}: distortion J = {model.inertia_:10.2f}, "
            f"{bits / original_bits:6.1%} of the original {original_bits} bits"
        )
        axis.imshow(np.clip(quantised.reshape(height, width, channels), 0.0, 1.0))
        axis.set_title(f"K = {n_clusters}")
    for axis in axes:
        axis.set_axis_off()
    figure.savefig(arguments.output, dpi=120)
    print(f"Saved {arguments.output}")


if __name__ == "__main__":
    main()
