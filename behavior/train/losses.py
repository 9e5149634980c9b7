"""The training losses: class-weighted cross-entropy or focal loss, per sequence or per clip (bags of people)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from behavior.data import mil
from behavior.settings import TrainConfig


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Inverse class frequency, normalized to a mean of 1 over the classes present.

    Example:
        >>> class_weights([0, 0, 0, 1], 2).tolist()
        [0.5, 1.5]
    """
    counts = np.bincount(np.asarray(labels, int), minlength=num_classes).astype(float)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    present = counts > 0
    weights[present] *= present.sum() / weights[present].sum()
    return torch.tensor(weights, dtype=torch.float32)


def classification_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                        gamma: float = 0.0) -> torch.Tensor:
    """Class-weighted cross-entropy; with ``gamma`` > 0, focal loss (easy examples count less)."""
    ce = F.cross_entropy(logits.float(), target, weight=weights, reduction="none")
    if gamma > 0:
        p_true = torch.softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
        ce = (1 - p_true).pow(gamma) * ce
    return ce.sum() / weights[target].sum()


def batch_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, train_config: TrainConfig, pooling: str,
               background: int | None, batch: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores (per sequence, or per clip with MIL pooling: ``batch[3]`` holds the bags) and the loss of one
    batch's logits."""
    if pooling != "none":
        scores = mil.clip_probs(torch.softmax(logits.float(), dim=-1), batch[3], pooling, background)
        return scores, mil.bag_loss(scores, y, weights, train_config.focal_gamma)
    return logits, classification_loss(logits, y, weights, train_config.focal_gamma)
