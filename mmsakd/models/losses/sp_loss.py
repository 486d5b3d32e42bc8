import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch


@MODELS.register_module()
class SPLoss(nn.Module):
    """Similarity-preserving knowledge distillation.

    F. Tung and G. Mori, "Similarity-Preserving Knowledge Distillation",
    ICCV 2019, https://arxiv.org/abs/1907.09682.

    Each feature batch is flattened to ``(N, D)``; its ``N x N`` Gram matrix
    ``G = F F^T`` is L2-normalised row by row, and the loss is the squared
    Frobenius distance between the student and teacher matrices divided by
    ``N^2``:

    .. math::

        L = \\frac{1}{N^2} \\| \\mathrm{norm}(G_T) - \\mathrm{norm}(G_S)
            \\|_F^2

    This is the paper's loss for one layer pair and the value of
    RepDistiller's ``Similarity`` loss. The row normalisation uses
    :func:`torch.nn.functional.normalize` (norm clamped at ``1e-12``), as
    RepDistiller does, so an all-zero batch gives ``0`` instead of NaN. The
    teacher feature is detached: RepDistiller computes it without gradient.
    A batch of one sample has no relation to preserve and gives ``0`` for
    non-zero features.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # RepDistiller / SAKD weight on the last conv-stage output
        >>> distill_losses = dict(
        ...     loss_sp=dict(type='mmsakd.SPLoss', loss_weight=3000))
        >>> loss_forward_mappings = dict(
        ...     loss_sp=dict(
        ...         s_feature=dict(recorder='s_layer3', from_student=True),
        ...         t_feature=dict(recorder='t_layer3', from_student=False)))
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student feature, (N, C, H, W), a
                token sequence (N, L, D) or (N, C).
            t_feature (torch.Tensor): Teacher feature of any of those
                shapes; only the batch size has to match the student's.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        # the similarity flattens each sample, as the reference does
        check_feature(s_feature, 's_feature', ndims=(2, 3, 4))
        check_feature(t_feature, 't_feature', ndims=(2, 3, 4))
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        n = s_feature.size(0)
        g_s = self.similarity(s_feature)
        g_t = self.similarity(t_feature.detach())
        loss = (g_t - g_s).pow(2).sum() / (n * n)
        return self.loss_weight * loss

    @staticmethod
    def similarity(feature: torch.Tensor) -> torch.Tensor:
        """Row-normalised Gram matrix of a flattened batch."""
        flat = feature.flatten(1)
        return F.normalize(flat @ flat.t(), p=2, dim=1)
