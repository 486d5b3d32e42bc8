"""Helpers of the loss tests."""
import inspect

import torch
from torch import nn

from mmsakd.models.losses.gating import gated_loss


def loss_kwargs(loss: nn.Module, *args, **kwargs) -> dict:
    """The forward arguments of ``loss`` by name, as the distiller's
    ``loss_forward_mappings`` give them."""
    bound = inspect.signature(loss.forward).bind(*args, **kwargs)
    return dict(bound.arguments)


def gated_call(loss: nn.Module,
               gates: torch.Tensor,
               *args,
               mode: str = 'subset') -> torch.Tensor:
    """One gated call of ``loss`` with per-sample ``gates``; ``args`` are
    the loss's forward arguments, in order."""
    return gated_loss(loss, loss_kwargs(loss, *args), gates, mode)
