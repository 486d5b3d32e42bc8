"""Helpers of the loss tests."""
import inspect

import torch

from mmsakd.models.losses import SpotWiseLoss


def gated_call(wrapper: SpotWiseLoss, gates: torch.Tensor, *args):
    """One call of a spot-wise loss with per-sample gates; ``args`` are the
    wrapped loss's forward arguments, in order."""
    if hasattr(wrapper, 'gated'):
        with wrapper.gated(gates):
            return wrapper(*args)
    kwargs = inspect.signature(wrapper.loss.forward).bind(*args).arguments
    return wrapper(gates, **kwargs)
