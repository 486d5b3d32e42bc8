"""Helpers of the loss tests."""
import torch

from mmsakd.models.losses import SpotWiseLoss


def gated_call(wrapper: SpotWiseLoss, gates: torch.Tensor, *args):
    """One call of a spot-wise loss with per-sample gates; ``args`` are the
    wrapped loss's forward arguments, in order."""
    return wrapper(*args, gates=gates)
