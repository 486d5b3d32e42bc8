"""Input checks and shape helpers shared by mmsakd's distillation losses."""
from typing import Tuple

import torch
import torch.nn.functional as F


def check_feature(feature: torch.Tensor,
                  name: str,
                  ndims: Tuple[int, ...] = (2, 4)) -> None:
    """Raise a ``ValueError`` unless ``feature`` is a non-empty batch.

    Args:
        feature (torch.Tensor): The tensor to check.
        name (str): The forward argument name, used in the messages.
        ndims (tuple[int]): Accepted numbers of dimensions.
    """
    if not isinstance(feature, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, '
                        f'got {type(feature).__name__}')
    if feature.dim() not in ndims:
        accepted = ' or '.join(f'{n}D' for n in ndims)
        raise ValueError(f'{name} must be a {accepted} tensor, '
                         f'got shape {tuple(feature.shape)}')
    if feature.size(0) == 0:
        raise ValueError(f'{name} is an empty batch (shape '
                         f'{tuple(feature.shape)}); the loss is undefined')


def check_same_batch(s_name: str, s_feature: torch.Tensor, t_name: str,
                     t_feature: torch.Tensor) -> None:
    """Raise a ``ValueError`` if the two batches differ in size."""
    if s_feature.size(0) != t_feature.size(0):
        raise ValueError(f'{s_name} and {t_name} must have the same batch '
                         f'size, got {s_feature.size(0)} and '
                         f'{t_feature.size(0)}')


def match_spatial_size(a: torch.Tensor,
                       b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two (N, C, H, W) maps to the smaller size.

    RepDistiller compares only the heights and pools to a square map; pooling
    each spatial axis to the smaller of the two sizes is the same for the
    square maps it was written for and also keeps non-square maps aligned.
    """
    size = (min(a.size(2), b.size(2)), min(a.size(3), b.size(3)))
    if tuple(a.shape[2:]) != size:
        a = F.adaptive_avg_pool2d(a, size)
    if tuple(b.shape[2:]) != size:
        b = F.adaptive_avg_pool2d(b, size)
    return a, b
