"""How the hidden class is chosen: constant weights, weights per group, softmax gating."""

from emkit.latent.weights import (
    ClassWeights,
    ConstantWeights,
    CountStatistics,
    GatingParams,
    GatingStatistics,
    GroupParams,
    GroupStatistics,
    GroupWeights,
    SoftmaxGating,
)

__all__ = [
    "ClassWeights",
    "ConstantWeights",
    "CountStatistics",
    "GatingParams",
    "GatingStatistics",
    "GroupParams",
    "GroupStatistics",
    "GroupWeights",
    "SoftmaxGating",
]
