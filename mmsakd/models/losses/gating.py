"""The per-sample spot gate of SAKD, applied to any distillation loss.

J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
Distillation", IEEE Transactions on Image Processing 31, 2022,
https://arxiv.org/abs/2205.02399.

In SAKD a policy decides for every sample whether to distill at a spot;
every loss at that spot then only sees the selected samples.
:func:`gated_loss` is that restriction as a function of the loss, its
forward arguments and the spot's gates; ``SpotAdaptiveDistiller`` calls it
in its loss loop on the plain losses of the config, so their state dict keys
stay MMRazor's (a checkpoint of a plain MMRazor distiller loads into a
spot-adaptive one and back).
"""
from typing import Any, Dict, Iterator, List, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .mmrazor_per_sample import min_samples_of, per_sample_form

MODES = ('subset', 'mask')


@runtime_checkable
class SpotGatedLoss(Protocol):
    """What a distillation loss may declare about its samples, for SAKD's
    gates. Both members are optional: a loss without them is gated in
    ``'subset'`` mode from one selected sample on.

    Attributes:
        min_samples (int): Fewest samples the loss is defined on (2 for a
            loss that relates pairs, e.g. CC); fewer selected samples give
            a zero (see :func:`gated_loss`). MMRazor's RKD losses get 2 from
            :data:`~mmsakd.models.losses.mmrazor_per_sample.MIN_SAMPLES`.
    """

    min_samples: int

    def per_sample(self, **kwargs) -> Tensor:
        """The (B, ) per-sample terms of the loss, weight included, with
        ``loss(**kwargs) == per_sample(**kwargs).mean()``; only a loss
        that is a batch mean of per-sample terms has one, and only such a
        loss can be gated in ``'mask'`` mode."""


def _iter_tensors(value: Any) -> Iterator[Tensor]:
    """Tensors of an argument: itself, or the items of a list/tuple."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Tensor):
                yield item


def select_rows(value: Any, batch: int, index: Tensor,
                index_list: List[int]) -> Any:
    """The selected samples of one argument, or the argument unchanged."""
    if isinstance(value, Tensor):
        if value.dim() > 0 and value.size(0) == batch:
            return value.index_select(0, index.to(value.device))
        return value
    if isinstance(value, (list, tuple)) and len(value) > 0:
        # A list of batched tensors (e.g. FSP's stage outputs) is selected
        # element-wise; this rule comes first so that K == B maps are not
        # mistaken for B per-sample items.
        if all(
                isinstance(item, Tensor) and item.dim() > 0
                and item.size(0) == batch for item in value):
            return type(value)(
                item.index_select(0, index.to(item.device)) for item in value)
        if len(value) == batch:
            return type(value)(value[i] for i in index_list)
    return value


def _zero(loss: nn.Module, kwargs: Dict[str, Any]) -> Tensor:
    """A zero that uses every input and parameter that requires grad, so
    DDP sees the same parameters on every rank; never a NaN for finite
    inputs."""
    tensors = [t for v in kwargs.values() for t in _iter_tensors(v)]
    device = tensors[0].device if tensors else None
    zero = torch.zeros((), device=device)
    for tensor in tensors:
        if tensor.requires_grad:
            zero = zero + 0 * tensor.sum()
    for param in loss.parameters():
        if param.requires_grad:
            zero = zero + 0 * param.sum()
    return zero


def _check_batch(batch: int, kwargs: Dict[str, Any]) -> None:
    """Raise a ``ValueError`` unless some tensor argument has ``batch``
    rows: gates of another length would select nothing, or broadcast."""
    tensors = [
        t for v in kwargs.values() for t in _iter_tensors(v) if t.dim() > 0
    ]
    if any(t.size(0) == batch for t in tensors):
        return
    if not tensors:
        raise ValueError('gated_loss cannot gate a loss without a batched '
                         'tensor argument')
    first = tensors[0]
    raise ValueError(f'gates must have shape ({first.size(0)}, ) to match '
                     'the batch of the loss inputs (first batched input has '
                     f'shape {tuple(first.shape)}), got ({batch},)')


def check_mode(loss: nn.Module, mode: str, key: str) -> None:
    """Raise a ``ValueError`` naming ``key`` unless ``loss`` can be gated
    in ``mode`` (``'mask'`` needs a per-sample form)."""
    if mode not in MODES:
        raise ValueError(f'{key} must be one of {MODES}, got {mode!r}')
    if mode == 'mask':
        try:
            per_sample_form(loss)
        except ValueError as err:
            raise ValueError(f'{key}: {err}') from err


def gated_loss(loss: nn.Module,
               kwargs: Dict[str, Any],
               gates: Tensor,
               mode: str = 'subset') -> Tensor:
    """``loss(**kwargs)`` restricted to the samples selected by ``gates``.

    The gates (B, ) are detached (the student loss sends no gradient to the
    policy); a sample counts as selected when its gate is above 0.5, as in
    the authors' code. The batch size B is the gates' length.

    ``mode='subset'`` (default, the faithful method, from the authors'
    code): with ``n`` of the ``B`` samples selected, the loss runs on the
    selected rows only and is scaled by ``n / B`` (a Python number). Rows
    are selected in every argument: tensors whose dim 0 is ``B``,
    lists/tuples whose items are all such tensors (element-wise, e.g. FSP's
    stage outputs), and other lists/tuples of length ``B`` (e.g. CRD's
    ``data_samples``); anything else is passed unchanged. Relational losses
    (SP, PKT, RKD, CC) thus relate the selected samples among themselves,
    and CRD contrasts and updates its memory bank only for selected
    samples, which is not a per-sample weighting. When every sample is
    selected the loss is called on the unchanged inputs.

    ``mode='mask'`` (optional): the loss's per-sample terms ``l_i``
    (:class:`SpotGatedLoss`, :mod:`~mmsakd.models.losses.
    mmrazor_per_sample`) give ``sum_i g_i l_i / B``. For such losses this
    equals the subset result, with static shapes and no host
    synchronisation, which suits compiled graphs and DDP.

    Degenerate selections (a deviation from the reference): when fewer than
    the loss's ``min_samples`` samples are selected (always including
    none), the loss is not called and the result is a zero that still
    depends on every tensor argument and every parameter of the loss that
    requires grad, so every DDP rank uses the same parameters and no NaN
    appears. The reference returns NaN for RKD and CC with one selected
    sample and zero tensors (AT/NST) or the ungated loss (FT) with none
    selected.

    Args:
        loss (nn.Module): The distillation loss.
        kwargs (dict): Its forward arguments.
        gates (Tensor): (B, ) 0/1 gates (or bools) of its spot.
        mode (str): ``'subset'`` or ``'mask'``.

    Returns:
        Tensor: The gated loss.
    """
    if not isinstance(gates, Tensor) or gates.dim() != 1:
        got = (f'shape {tuple(gates.shape)}'
               if isinstance(gates, Tensor) else type(gates).__name__)
        raise ValueError(f'gates must be a (B, ) tensor, got {got}')
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    gates = gates.detach()
    batch = gates.shape[0]
    _check_batch(batch, kwargs)
    selected = gates if gates.dtype == torch.bool else gates > 0.5
    min_samples = min_samples_of(loss)
    if mode == 'mask':
        terms = per_sample_form(loss)(**kwargs)
        weights = selected.to(device=terms.device, dtype=terms.dtype)
        value = (weights * terms).sum() / batch
        if min_samples > 1:
            # a tensor condition keeps the graph static and avoids a sync
            value = value * (weights.sum() >= min_samples).to(value.dtype)
        return value
    index = selected.nonzero(as_tuple=True)[0]
    n = index.numel()
    if n < min_samples:
        return _zero(loss, kwargs)
    if n == batch:
        return loss(**kwargs)
    index_list = index.tolist()
    selected_kwargs = {
        k: select_rows(v, batch, index, index_list)
        for k, v in kwargs.items()
    }
    return loss(**selected_kwargs) * (n / batch)
