import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch, match_spatial_size


@MODELS.register_module()
class FactorTransferLoss(nn.Module):
    """Factor transfer, the loss RepDistiller and SAKD run.

    J. Kim, S. Park and N. Kwak, "Paraphrasing Complex Network: Network
    Compression via Factor Transfer", NeurIPS 2018,
    https://arxiv.org/abs/1802.04977.

    The inputs are factors: the student's translator output and the
    teacher's paraphraser code, (N, C, H, W) each. Every map is reduced to
    one value per position, the channel mean of its ``p1``-th power, and the
    resulting ``H*W`` vector is L2-normalised per sample:

    .. math::

        F(x)_n = \\frac{v_n}{\\|v_n\\|_2}, \\qquad
        v_{n,j} = \\frac{1}{C} \\sum_c x_{n,c,j}^{p_1}

    The loss is the mean over samples and positions of
    ``|F(s) - F(t)|`` (``p2 = 1``, the paper's L1 distance) or of
    ``(F(s) - F(t)) ** p2`` otherwise, as RepDistiller's
    ``FactorTransfer`` (``p1 = 2``, ``p2 = 1``), which SAKD uses unchanged.
    When the spatial sizes differ the larger map is average-pooled to the
    smaller one (:func:`match_spatial_size`). The teacher factor is
    detached (the paraphraser is fixed after its pre-training).

    Difference from MMRazor's ``FTLoss``: that loss normalises the whole
    flattened map, ``normalize(x.view(N, -1))``, without the channel mean of
    squares, so on the same inputs it gives another value and other
    gradients; use this class to reproduce RepDistiller and SAKD.
    Normalisation uses :func:`torch.nn.functional.normalize` (norm clamped
    at ``1e-12``) as in the reference.

    The loss is a batch mean of per-sample terms (:meth:`per_sample`), so a
    spot-wise gate can weight it per sample; one sample suffices
    (``min_samples = 1``).

    Args:
        p1 (float): Power of the activations before the channel mean.
            Defaults to 2.
        p2 (float): Power of the factor distance; 1 is the absolute value.
            Defaults to 1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # SAKD / RepDistiller, resnet56 -> resnet20, beta = 200
        >>> distill_losses = dict(
        ...     loss_ft=dict(type='mmsakd.FactorTransferLoss',
        ...                  loss_weight=200.0))
        >>> loss_forward_mappings = dict(
        ...     loss_ft=dict(
        ...         s_feature=dict(from_student=True, recorder='feat3',
        ...                        connector='s_factor'),
        ...         t_feature=dict(from_student=False, recorder='feat3',
        ...                        connector='t_factor')))
    """

    min_samples = 1

    def __init__(self,
                 p1: float = 2,
                 p2: float = 1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        for name, value in (('p1', p1), ('p2', p2)):
            if isinstance(value,
                          bool) or not isinstance(value,
                                                  (int, float)) or value <= 0:
                raise ValueError(f'FactorTransferLoss: {name} must be a '
                                 f'positive number, got {value!r}; the '
                                 'reference uses p1=2, p2=1')
        self.p1 = p1
        self.p2 = p2
        self.loss_weight = loss_weight

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student factor, (N, C, H, W).
            t_feature (torch.Tensor): Teacher factor, (N, C', H', W').

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        return self.loss_weight * self.distances(s_feature, t_feature).mean()

    def per_sample(self, s_feature: torch.Tensor,
                   t_feature: torch.Tensor) -> torch.Tensor:
        """The weighted loss of every sample, (N, ); their mean is
        :meth:`forward`."""
        return self.loss_weight * self.distances(s_feature, t_feature).mean(1)

    def distances(self, s_feature: torch.Tensor,
                  t_feature: torch.Tensor) -> torch.Tensor:
        """Distance of the two factors at every position, (N, H*W)."""
        check_feature(s_feature, 's_feature', ndims=(4, ))
        check_feature(t_feature, 't_feature', ndims=(4, ))
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        s_feature, t_feature = match_spatial_size(s_feature,
                                                  t_feature.detach())
        delta = self.factor(s_feature) - self.factor(t_feature)
        if self.p2 == 1:
            return delta.abs()
        return delta.pow(self.p2)

    def factor(self, feature: torch.Tensor) -> torch.Tensor:
        """The normalised channel mean of ``feature ** p1``, (N, H*W)."""
        pooled = feature.pow(self.p1).mean(1)
        return F.normalize(pooled.view(feature.size(0), -1))
