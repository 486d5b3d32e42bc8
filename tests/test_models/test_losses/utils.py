"""Helpers of the loss tests."""
import torch

from mmsakd.models.losses import SpotWiseLoss


def gated_call(wrapper: SpotWiseLoss, gates: torch.Tensor, *args):
    """One call of a spot-wise loss with per-sample gates."""
    if hasattr(wrapper, 'gated'):
        with wrapper.gated(gates):
            return wrapper(*args)
    return wrapper(gates, *args)
