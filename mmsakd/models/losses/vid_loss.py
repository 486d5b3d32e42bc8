import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch, match_spatial_size


@MODELS.register_module()
class VIDLoss(nn.Module):
    """Variational information distillation.

    S. Ahn, S. X. Hu, A. Damianou, N. D. Lawrence and Z. Dai, "Variational
    Information Distillation for Knowledge Transfer", CVPR 2019,
    https://arxiv.org/abs/1904.05835.

    The teacher map ``t`` is modelled as a Gaussian whose mean is regressed
    from the student map ``s`` by ``mu(s)`` (1x1 conv - ReLU - 1x1 conv -
    ReLU - 1x1 conv, no biases) and whose variance is one learned value per
    teacher channel, ``sigma_c^2 = softplus(log_scale_c) + eps``. The loss is
    the negative log-likelihood without the constant ``log(2 pi) / 2``,
    averaged over batch, channels and positions:

    .. math::

        L = \\mathrm{mean}_{n,c,h,w}\\; \\frac{1}{2} \\left(
            \\frac{(t_{nchw} - \\mu(s)_{nchw})^2}{\\sigma_c^2}
            + \\log \\sigma_c^2 \\right)

    The regressor and ``log_scale`` belong to this loss, so the optimizer
    that trains the distiller's losses trains them. Conventions of
    RepDistiller (code from the paper's authors), kept here: the middle
    width defaults to the teacher channel count, ``log_scale`` starts at
    ``log(exp(init_pred_var - eps) - 1)`` so every variance starts at
    ``init_pred_var`` (5.0), ``eps`` is 1e-5, the convolutions use PyTorch's
    default initialisation, and when the spatial sizes differ the larger map
    is average-pooled to the smaller one (per axis, see
    :func:`match_spatial_size`). ``softplus`` replaces RepDistiller's
    ``log(1 + exp(x))``: the same value without overflow for large ``x``.
    The teacher feature is detached, as RepDistiller computes it without
    gradient. Pooled (N, C) features are accepted as (N, C, 1, 1) maps.

    Args:
        student_channels (int): Channels of the student feature.
        teacher_channels (int): Channels of the teacher feature.
        mid_channels (int, optional): Width of the hidden 1x1 convs.
            Defaults to ``teacher_channels``.
        init_pred_var (float): Initial variance of every channel, must be
            larger than ``eps``. Defaults to 5.0.
        eps (float): Lower bound added to the variance. Defaults to 1e-5.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # one loss per distilled stage, e.g. resnet56 -> resnet20 layer2
        >>> distill_losses = dict(
        ...     loss_vid_2=dict(
        ...         type='mmsakd.VIDLoss',
        ...         student_channels=32,
        ...         teacher_channels=32,
        ...         loss_weight=1.0))
        >>> loss_forward_mappings = dict(
        ...     loss_vid_2=dict(
        ...         s_feature=dict(recorder='s_layer2', from_student=True),
        ...         t_feature=dict(recorder='t_layer2', from_student=False)))
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 mid_channels: Optional[int] = None,
                 init_pred_var: float = 5.0,
                 eps: float = 1e-5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if init_pred_var <= eps:
            raise ValueError(f'init_pred_var ({init_pred_var}) must be '
                             f'larger than eps ({eps})')
        if mid_channels is None:
            mid_channels = teacher_channels
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.eps = eps
        self.loss_weight = loss_weight
        self.regressor = nn.Sequential(
            nn.Conv2d(student_channels, mid_channels, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(mid_channels, mid_channels, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(mid_channels, teacher_channels, 1, bias=False),
        )
        # inverse softplus, so the variance starts at init_pred_var
        init_log_scale = math.log(math.expm1(init_pred_var - eps))
        self.log_scale = nn.Parameter(
            torch.full((teacher_channels, ), init_log_scale))

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student feature, (N, C_s, H, W) or
                (N, C_s).
            t_feature (torch.Tensor): Teacher feature, (N, C_t, H', W') or
                (N, C_t).

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        return self.loss_weight * self._neg_log_prob(s_feature,
                                                     t_feature).mean()

    def per_sample(self, s_feature: torch.Tensor,
                   t_feature: torch.Tensor) -> torch.Tensor:
        """The loss of every sample, (N, ); ``forward`` is their mean.

        Args:
            s_feature (torch.Tensor): As ``forward``.
            t_feature (torch.Tensor): As ``forward``.
        """
        neg_log_prob = self._neg_log_prob(s_feature, t_feature)
        return self.loss_weight * neg_log_prob.flatten(1).mean(1)

    def _neg_log_prob(self, s_feature: torch.Tensor,
                      t_feature: torch.Tensor) -> torch.Tensor:
        """The Gaussian negative log-likelihood, (N, C_t, H, W)."""
        check_feature(s_feature, 's_feature')
        check_feature(t_feature, 't_feature')
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        if s_feature.size(1) != self.student_channels:
            raise ValueError(f's_feature has {s_feature.size(1)} channels, '
                             f'student_channels is {self.student_channels}')
        if t_feature.size(1) != self.teacher_channels:
            raise ValueError(f't_feature has {t_feature.size(1)} channels, '
                             f'teacher_channels is {self.teacher_channels}')
        if s_feature.dim() == 2:
            s_feature = s_feature[:, :, None, None]
        if t_feature.dim() == 2:
            t_feature = t_feature[:, :, None, None]
        s_feature, target = match_spatial_size(s_feature, t_feature.detach())
        pred_mean = self.regressor(s_feature)
        pred_var = self.pred_var.view(1, -1, 1, 1)
        neg_log_prob = 0.5 * (
            (pred_mean - target).pow(2) / pred_var + torch.log(pred_var))
        return neg_log_prob

    @property
    def pred_var(self) -> torch.Tensor:
        """The per-channel variance, (C_t, )."""
        return F.softplus(self.log_scale) + self.eps
