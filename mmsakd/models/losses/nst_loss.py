import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch, match_spatial_size


@MODELS.register_module()
class NSTLoss(nn.Module):
    """Neuron selectivity transfer.

    Z. Huang and N. Wang, "Like What You Like: Knowledge Distill via Neuron
    Selectivity Transfer", arXiv 2017, https://arxiv.org/abs/1707.01219.

    Every channel of a (N, C, H, W) map is a "neuron" whose ``H*W``
    activations are L2-normalised. The loss is the squared maximum mean
    discrepancy between the student's and the teacher's neurons under the
    polynomial kernel ``k(x, y) = (x^T y)^2`` (degree 2, ``c = 0``):

    .. math::

        L = \\overline{k(T, T)} + \\overline{k(S, S)} - 2\\,
            \\overline{k(S, T)}

    where each bar is the mean over the batch and over all pairs of
    channels. Student and teacher may have different channel counts.

    Conventions of RepDistiller, kept here: when the spatial sizes differ
    the larger map is average-pooled to the smaller one (per axis, see
    :func:`match_spatial_size`); the kernel means are plain means over
    samples and channel pairs (the paper writes the per-sample MMD with
    ``1/C^2`` factors and the same value results); the constant
    teacher-teacher term is kept so the value matches RepDistiller's
    "full" loss. Normalisation uses :func:`torch.nn.functional.normalize`
    (norm clamped at ``1e-12``), so an all-zero channel stays zero instead
    of becoming NaN. The teacher feature is detached, as RepDistiller
    computes it without gradient. The paper adds this term to the task loss
    with weight ``lambda / 2``; pass that through ``loss_weight``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # SAKD weight, one loss per distilled stage
        >>> distill_losses = dict(
        ...     loss_nst_1=dict(type='mmsakd.NSTLoss', loss_weight=50))
        >>> loss_forward_mappings = dict(
        ...     loss_nst_1=dict(
        ...         s_feature=dict(recorder='s_layer1', from_student=True),
        ...         t_feature=dict(recorder='t_layer1', from_student=False)))
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student feature map, (N, C, H, W).
            t_feature (torch.Tensor): Teacher feature map, (N, C', H', W').

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        s, t = self._normalized(s_feature, t_feature)
        loss = (
            self.poly_kernel(t, t).mean() + self.poly_kernel(s, s).mean() -
            2 * self.poly_kernel(s, t).mean())
        return self.loss_weight * loss

    def per_sample(self, s_feature: torch.Tensor,
                   t_feature: torch.Tensor) -> torch.Tensor:
        """The loss of every sample, (N, ); ``forward`` is their mean (every
        sample's kernel blocks have the same size).

        Args:
            s_feature (torch.Tensor): As ``forward``.
            t_feature (torch.Tensor): As ``forward``.
        """
        s, t = self._normalized(s_feature, t_feature)

        def kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.poly_kernel(a, b).flatten(1).mean(1)

        terms = kernel_mean(t, t) + kernel_mean(s, s) - 2 * kernel_mean(s, t)
        return self.loss_weight * terms

    @staticmethod
    def _normalized(s_feature: torch.Tensor, t_feature: torch.Tensor):
        """Checked, size-matched, L2-normalised (N, C, HW) features."""
        check_feature(s_feature, 's_feature', ndims=(4, ))
        check_feature(t_feature, 't_feature', ndims=(4, ))
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        s_feature, t_feature = match_spatial_size(s_feature,
                                                  t_feature.detach())
        return (F.normalize(s_feature.flatten(2),
                            dim=2), F.normalize(t_feature.flatten(2), dim=2))

    @staticmethod
    def poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Kernel ``(a_i^T b_j)^2`` between all channels, (N, C_a, C_b)."""
        return torch.bmm(a, b.transpose(1, 2)).pow(2)
