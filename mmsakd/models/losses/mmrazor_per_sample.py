"""Per-sample forms of MMRazor's distillation losses, for SAKD's
``loss_mode='mask'``.

Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
(arXiv 2205.02399). A gated loss in mask mode is ``sum_i g_i l_i / B`` over
its per-sample terms ``l_i`` (weight included, ``loss(**kw) == l.mean()``):
the loss must be a mean over the batch of per-sample terms, which is exactly
when masking a sample equals dropping it (SAKD reference, section 1.6).
mmsakd's own losses carry theirs (:class:`~mmsakd.models.losses.gating.
SpotGatedLoss`); MMRazor's come from :data:`PER_SAMPLE_FORMS`. Relational
and contrastive losses (SP, PKT, RKD, CC, CRD) couple the samples of a batch
and can never be written this way. Each form's ``check`` returns why an
instance's options break the decomposition, or None.
"""
import functools
from typing import Callable, Dict, NamedTuple, Optional

import torch.nn.functional as F
from mmrazor.models.losses import (AngleWiseRKD, ATLoss, DistanceWiseRKD,
                                   FTLoss, KLDivergence, L2Loss)
from torch import Tensor, nn


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
            f"loss_mode='mask' has no per-sample form of "
            f'{type(loss).__name__}: it has no `per_sample` method and is '
            f'not one of MMRazor\'s {supported}. Relational and '
            "contrastive losses can never be masked. Use loss_mode='subset', "
            'which works for every loss.')
    reason = form.check(loss) if form.check is not None else None
    if reason is not None:
        raise ValueError(
            f"loss_mode='mask' needs {type(loss).__name__} to "
            f"be a mean of per-sample terms, but it has {reason}. "
            "Use loss_mode='subset', which works for every loss.")
    return functools.partial(form.terms, loss)


def min_samples_of(loss: nn.Module) -> int:
    """Fewest samples ``loss`` is defined on: its ``min_samples``
    attribute (mmsakd's losses), :data:`MIN_SAMPLES`, or 1."""
    own = getattr(loss, 'min_samples', None)
    if own is not None:
        return own
    return MIN_SAMPLES.get(type(loss), 1)
