"""The per-sample spot gate of SAKD, wrapped around any distillation loss."""
import functools
import inspect
from typing import (Any, Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Tuple, Union)

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrazor.models.losses import (AngleWiseRKD, ATLoss, DistanceWiseRKD,
                                   FTLoss, KLDivergence, L2Loss)
from torch import Tensor

from mmsakd.registry import MODELS

MODES = ('subset', 'mask')

# ---------------------------------------------------------------------------
# Per-sample forms of MMRazor's losses for ``mode='mask'`` (mmsakd's own
# losses carry theirs as a ``per_sample`` method).
#
# Each function returns the (B, ) terms ``w`` of the wrapped loss, weight
# included, with ``loss(**kw) == w.mean()``: the loss must be a mean over the
# batch of per-sample terms, which is exactly when masking a sample equals
# dropping it (SAKD reference, section 1.6). Relational and contrastive
# losses (SP, PKT, RKD, CC, CRD) couple the samples of a batch and can never
# be written this way. ``check`` returns why an instance's options break the
# decomposition, or None.
# ---------------------------------------------------------------------------


def _kl_terms(loss: KLDivergence, preds_S: Tensor, preds_T: Tensor) -> Tensor:
    if loss.teacher_detach:
        preds_T = preds_T.detach()
    p_t = F.softmax(preds_T / loss.tau, dim=1)
    log_p_s = F.log_softmax(preds_S / loss.tau, dim=1)
    # 'batchmean' divides the sum by dim 0, so one sample's term is its sum
    kl = F.kl_div(log_p_s, p_t, reduction='none').flatten(1).sum(1)
    return loss.loss_weight * loss.tau**2 * kl


def _kl_check(loss: KLDivergence) -> Optional[str]:
    if loss.reduction != 'batchmean':
        return (f"reduction={loss.reduction!r} (only 'batchmean' is a mean "
                'of per-sample terms)')
    return None


def _at_terms(loss: ATLoss, s_feature: Tensor, t_feature: Tensor) -> Tensor:
    diff = (
        loss.calc_attention_matrix(s_feature) -
        loss.calc_attention_matrix(t_feature))
    return loss.loss_weight * diff.pow(2).mean(1)


def _l2_terms(loss: L2Loss, s_feature: Tensor, t_feature: Tensor) -> Tensor:
    if loss.normalize:
        s_feature = loss.normalize_feature(s_feature)
        t_feature = loss.normalize_feature(t_feature)
    diff = s_feature - t_feature
    terms = diff.pow(2).reshape(diff.size(0), -1).sum(1)
    if loss.div_element:
        # numel() of the batch is B times the per-sample size
        terms = terms / s_feature[0].numel()
    return loss.loss_weight * terms


def _l2_check(loss: L2Loss) -> Optional[str]:
    if loss.dist:
        return ('dist=True (the square root of the batch sum is not a mean '
                'of per-sample terms)')
    return None


def _ft_terms(loss: FTLoss, s_feature: Tensor, t_feature: Tensor) -> Tensor:
    diff = loss.factor(s_feature) - loss.factor(t_feature)
    return loss.loss_weight * diff.abs().mean(1)


def _ft_check(loss: FTLoss) -> Optional[str]:
    criterion = loss.criterion
    if not isinstance(criterion, nn.L1Loss) or criterion.reduction != 'mean':
        return f'criterion={criterion!r} (only L1Loss with mean reduction)'
    return None


class _PerSampleForm(NamedTuple):
    terms: Callable[..., Tensor]
    check: Optional[Callable[[nn.Module], Optional[str]]] = None


# Keyed by exact type: a subclass may redefine forward (mmsakd's CRDLoss
# does), and its per-sample form would then be wrong without any error.
PER_SAMPLE_FORMS: Dict[type, _PerSampleForm] = {
    KLDivergence: _PerSampleForm(_kl_terms, _kl_check),
    ATLoss: _PerSampleForm(_at_terms),
    L2Loss: _PerSampleForm(_l2_terms, _l2_check),
    FTLoss: _PerSampleForm(_ft_terms, _ft_check),
}

# MMRazor's relation losses that have no value on a single sample: RKD's
# mean distance and angles are taken over an empty set (NaN).
MIN_SAMPLES: Dict[type, int] = {DistanceWiseRKD: 2, AngleWiseRKD: 2}


def per_sample_form(loss: nn.Module) -> Callable[..., Tensor]:
    """The function that gives the (B, ) per-sample terms of ``loss``.

    mmsakd's losses carry their own (a ``per_sample`` method); MMRazor's
    come from :data:`PER_SAMPLE_FORMS`.

    Raises:
        ValueError: If the loss has no per-sample form, or its options make
            it something else than a mean of per-sample terms.
    """
    own = getattr(loss, 'per_sample', None)
    if callable(own):
        return own
    form = PER_SAMPLE_FORMS.get(type(loss))
    if form is None:
        supported = ', '.join(cls.__name__ for cls in PER_SAMPLE_FORMS)
        raise ValueError(
            f"SpotWiseLoss(mode='mask') has no per-sample form of "
            f'{type(loss).__name__}: it has no `per_sample` method and is '
            f'not one of MMRazor\'s {supported}. Relational and '
            "contrastive losses can never be masked. Use mode='subset', "
            'which works for every loss.')
    reason = form.check(loss) if form.check is not None else None
    if reason is not None:
        raise ValueError(
            f"SpotWiseLoss(mode='mask') needs {type(loss).__name__} to "
            f"be a mean of per-sample terms, but it has {reason}. "
            "Use mode='subset', which works for every loss.")
    return functools.partial(form.terms, loss)


def min_samples_of(loss: nn.Module) -> int:
    """Fewest samples ``loss`` is defined on: its ``min_samples``
    attribute (mmsakd's losses), :data:`MIN_SAMPLES`, or 1."""
    own = getattr(loss, 'min_samples', None)
    if own is not None:
        return own
    return MIN_SAMPLES.get(type(loss), 1)


def _iter_tensors(value: Any) -> Iterator[Tensor]:
    """Tensors of an argument: itself, or the items of a list/tuple."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Tensor):
                yield item


def _select_rows(value: Any, batch: int, index: Tensor,
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


@MODELS.register_module()
class SpotWiseLoss(nn.Module):
    """Restrict a distillation loss to the samples selected at its spot.

    J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
    Distillation", IEEE Transactions on Image Processing 31, 2022,
    https://arxiv.org/abs/2205.02399.

    In SAKD a policy decides for every sample whether to distill at a spot;
    every loss at that spot then only sees the selected samples. The
    decisions arrive with each call as ``gates``, a (B, ) tensor of 0/1
    (``SpotAdaptiveDistiller.compute_distill_losses`` passes each loss its
    spot's column); they are detached (the student loss sends no gradient
    to the policy) and a sample counts as selected when its gate is above
    0.5, as in the authors' code. Without gates the wrapper is transparent:
    ``forward(**kw)`` returns exactly ``loss(**kw)``. The state dict keys
    are those of the wrapped loss, so a checkpoint of a plain MMRazor
    distiller (e.g. CRD's embeddings and memory bank) loads into a
    spot-adaptive one and back.

    ``mode='subset'`` (default, the faithful method, from the authors'
    code): with ``n`` of the ``B`` samples selected, the wrapped loss runs
    on the selected rows only and is scaled by ``n / B`` (a Python number).
    Rows are selected in every argument: tensors whose dim 0 is ``B``,
    lists/tuples whose items are all such tensors (element-wise, e.g. FSP's
    stage outputs), and other lists/tuples of length ``B`` (e.g. CRD's
    ``data_samples``); anything else is passed unchanged. The batch size
    ``B`` is dim 0 of the first tensor argument in signature order (or of
    the first tensor of the first list argument). Relational losses (SP,
    PKT, RKD, CC) thus relate the selected samples among themselves, and
    CRD contrasts and updates its memory bank only for selected samples,
    which is not a per-sample weighting. When every sample is selected the
    wrapped loss is called on the unchanged inputs.

    ``mode='mask'`` (optional): the wrapped loss is written as a mean of
    per-sample terms ``l_i`` (weight included) and the result is
    ``sum_i g_i l_i / B``. For such losses this equals the subset result,
    with static shapes and no host synchronisation, which suits compiled
    graphs and DDP. It is off by default because only losses that are means
    of per-sample terms have such a form: mmsakd's losses that define
    ``per_sample`` (NST, VID, FSP, factor transfer) and MMRazor's
    ``KLDivergence`` with ``reduction='batchmean'``, ``ATLoss``, ``L2Loss``
    with ``dist=False`` and ``FTLoss`` (:data:`PER_SAMPLE_FORMS`).
    Relational or contrastive losses can never be masked; an unsupported
    loss raises ``ValueError`` at construction.

    Degenerate selections (a deviation from the reference): when fewer than
    ``min_samples`` samples are selected (always including none), the
    wrapped loss is not called and the result is a zero that still depends
    on every tensor argument and every parameter of the wrapped loss that
    requires grad, so every DDP rank uses the same parameters and no NaN
    appears. ``min_samples=None`` takes the loss's own ``min_samples``
    (2 for mmsakd's ``CCLoss``), 2 for MMRazor's ``DistanceWiseRKD`` and
    ``AngleWiseRKD``, and 1 otherwise. The reference returns NaN for RKD and
    CC with one selected sample and zero tensors (AT/NST) or the ungated
    loss (FT) with none selected.

    Args:
        loss (dict | nn.Module): The wrapped loss, a config built with
            ``mmsakd.registry.MODELS`` or a module. It is kept as the child
            ``loss``.
        mode (str): ``'subset'`` or ``'mask'``, see above. Defaults to
            ``'subset'``.
        min_samples (int, optional): Fewest selected samples for which the
            wrapped loss is computed; below it the result is zero. Defaults
            to None (see above).

    Example:
        >>> loss = SpotWiseLoss(dict(type='KLDivergence', tau=4))
        >>> gates = torch.tensor([1., 0., 1., 1.])
        >>> value = loss(preds_S=s_logits, preds_T=t_logits, gates=gates)
    """

    def __init__(self,
                 loss: Union[dict, nn.Module],
                 mode: str = 'subset',
                 min_samples: Optional[int] = None) -> None:
        super().__init__()
        if isinstance(loss, dict):
            loss = MODELS.build(loss)
        if not isinstance(loss, nn.Module):
            raise TypeError('loss must be a config dict or an nn.Module, '
                            f'got {type(loss).__name__}')
        if mode not in MODES:
            raise ValueError(f'SpotWiseLoss: mode must be one of {MODES}, '
                             f'got {mode!r}')
        if min_samples is None:
            min_samples = min_samples_of(loss)
        if (isinstance(min_samples, bool) or not isinstance(min_samples, int)
                or min_samples < 1):
            raise ValueError('SpotWiseLoss: min_samples must be an int >= 1 '
                             f'or None, got {min_samples!r}')
        self.loss = loss
        self.mode = mode
        self.min_samples = min_samples
        self._terms = per_sample_form(loss) if mode == 'mask' else None
        try:
            self._signature = inspect.signature(loss.forward)
        except (TypeError, ValueError):
            self._signature = None
        self._register_state_dict_hook(_unnest_keys)
        self._register_load_state_dict_pre_hook(_nest_keys)

    def forward(self,
                *args,
                gates: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the wrapped loss on the selected samples.

        Args:
            *args: The wrapped loss's arguments.
            gates (Tensor, optional): (B, ) gates, 1 (or above 0.5) where
                the sample is distilled at this spot; detached here. None
                computes the wrapped loss unchanged.
            **kwargs: The wrapped loss's arguments.

        Returns:
            Tensor: ``loss(...)`` without gates; otherwise ``n / B`` times
            the loss of the ``n`` selected samples (``'subset'``) or
            ``sum_i g_i l_i / B`` (``'mask'``), or a zero when fewer than
            ``min_samples`` are selected.
        """
        if gates is None:
            return self.loss(*args, **kwargs)
        if not isinstance(gates, Tensor) or gates.dim() != 1:
            got = (f'shape {tuple(gates.shape)}'
                   if isinstance(gates, Tensor) else type(gates).__name__)
            raise ValueError(f'gates must be a (B, ) tensor, got {got}')
        gates = gates.detach()
        values = self._ordered_arguments(args, kwargs)
        batch = self._check_batch(gates, values)
        selected = gates if gates.dtype == torch.bool else gates > 0.5
        if self.mode == 'mask':
            return self._masked(selected, batch, args, kwargs)

        index = selected.nonzero(as_tuple=True)[0]
        n = index.numel()
        if n < self.min_samples:
            return self._zero(values)
        if n == batch:
            return self.loss(*args, **kwargs)
        index_list = index.tolist()
        sub_args = [_select_rows(a, batch, index, index_list) for a in args]
        sub_kwargs = {
            k: _select_rows(v, batch, index, index_list)
            for k, v in kwargs.items()
        }
        return self.loss(*sub_args, **sub_kwargs) * (n / batch)

    def _ordered_arguments(self, args: Tuple, kwargs: Dict) -> List[Any]:
        """Argument values in the wrapped signature's order."""
        if self._signature is not None:
            try:
                bound = self._signature.bind(*args, **kwargs)
            except TypeError:
                pass
            else:
                return list(bound.arguments.values())
        return list(args) + list(kwargs.values())

    @staticmethod
    def _check_batch(gates: Tensor, values: List[Any]) -> int:
        for value in values:
            for tensor in _iter_tensors(value):
                if tensor.dim() == 0:
                    continue
                batch = tensor.size(0)
                if tuple(gates.shape) != (batch, ):
                    raise ValueError(
                        f'gates must have shape ({batch}, ) to match the '
                        'batch of the loss inputs (first batched input '
                        f'has shape {tuple(tensor.shape)}), got '
                        f'{tuple(gates.shape)}')
                return batch
        raise ValueError('SpotWiseLoss cannot gate a loss without a batched '
                         'tensor argument')

    def _masked(self, selected: Tensor, batch: int, args: Tuple,
                kwargs: Dict) -> Tensor:
        terms = self._terms(*args, **kwargs)
        weights = selected.to(device=terms.device, dtype=terms.dtype)
        loss = (weights * terms).sum() / batch
        if self.min_samples > 1:
            # a tensor condition keeps the graph static and avoids a sync
            loss = loss * (weights.sum() >= self.min_samples).to(loss.dtype)
        return loss

    def _zero(self, values: List[Any]) -> Tensor:
        """A zero that uses every input and parameter that requires grad,
        so DDP sees the same parameters on every rank; never a NaN for
        finite inputs."""
        tensors = [t for v in values for t in _iter_tensors(v)]
        device = tensors[0].device if tensors else None
        zero = torch.zeros((), device=device)
        for tensor in tensors:
            if tensor.requires_grad:
                zero = zero + 0 * tensor.sum()
        for param in self.loss.parameters():
            if param.requires_grad:
                zero = zero + 0 * param.sum()
        return zero

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, min_samples={self.min_samples}'


def _unnest_keys(module: nn.Module, state_dict: Dict, prefix: str,
                 local_metadata: Dict) -> None:
    """State dict hook: the wrapped loss's keys without the ``loss.``
    level, as a plain MMRazor distiller writes them."""
    nested = prefix + 'loss.'
    for key in [k for k in state_dict if k.startswith(nested)]:
        state_dict[prefix + key[len(nested):]] = state_dict.pop(key)


def _nest_keys(state_dict: Dict, prefix: str, *args) -> None:
    """Load pre-hook: accept the keys of :func:`_unnest_keys` (and those of
    a plain MMRazor distiller), as well as ``loss.``-nested ones."""
    nested = prefix + 'loss.'
    for key in [
            k for k in state_dict
            if k.startswith(prefix) and not k.startswith(nested)
    ]:
        state_dict[nested + key[len(prefix):]] = state_dict.pop(key)
