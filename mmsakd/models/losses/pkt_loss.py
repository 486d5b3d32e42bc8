import torch
import torch.nn as nn

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch


@MODELS.register_module()
class PKTLoss(nn.Module):
    """Probabilistic knowledge transfer.

    N. Passalis and A. Tefas, "Learning Deep Representations with
    Probabilistic Knowledge Transfer", ECCV 2018,
    https://arxiv.org/abs/1803.10837.

    Each sample is L2-normalised, the pairwise cosine similarities of the
    batch are mapped to ``[0, 1]`` with ``(cos + 1) / 2`` and every row is
    divided by its sum, giving conditional probabilities ``p_{j|i}`` for the
    student and ``q_{j|i}`` for the teacher. The loss is the KL divergence of
    the student's from the teacher's, averaged over all ``N^2`` entries:

    .. math::

        L = \\frac{1}{N^2} \\sum_{i, j} q_{j|i}
            \\log \\frac{q_{j|i} + \\epsilon}{p_{j|i} + \\epsilon}

    Conventions of RepDistiller (the authors' code), kept here: the kernel is
    the cosine similarity (the paper's default), ``eps`` (1e-7) is added to
    each norm before dividing and inside the logarithm, NaN entries of the
    normalised features are set to 0, and the KL terms are averaged over
    ``N^2`` entries rather than summed. The norms are computed with
    :func:`torch.linalg.vector_norm`, equal in value to a square root of a
    sum of squares but with a zero (not NaN) gradient for an all-zero sample.
    Features with more than two dimensions are flattened per sample;
    RepDistiller only uses pooled (N, C) vectors. The teacher feature is
    detached, as RepDistiller computes it without gradient. A batch of one
    sample gives ``0``.

    Args:
        eps (float): The epsilon of RepDistiller. Defaults to 1e-7.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # SAKD weight on the pooled penultimate features
        >>> distill_losses = dict(
        ...     loss_pkt=dict(type='mmsakd.PKTLoss', loss_weight=30000))
        >>> loss_forward_mappings = dict(
        ...     loss_pkt=dict(
        ...         s_feature=dict(recorder='s_gap', from_student=True),
        ...         t_feature=dict(recorder='t_gap', from_student=False)))
    """

    def __init__(self, eps: float = 1e-7, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student feature, (N, C) or
                (N, C, H, W).
            t_feature (torch.Tensor): Teacher feature, (N, C') or
                (N, C', H', W'); only the batch size has to match.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        check_feature(s_feature, 's_feature')
        check_feature(t_feature, 't_feature')
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        p_s = self.conditional_probabilities(s_feature)
        p_t = self.conditional_probabilities(t_feature.detach())
        eps = self.eps
        loss = (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()
        return self.loss_weight * loss

    def conditional_probabilities(self, feature: torch.Tensor) -> torch.Tensor:
        """Row-normalised cosine-similarity kernel of a batch."""
        flat = feature.flatten(1)
        norm = torch.linalg.vector_norm(flat, dim=1, keepdim=True)
        unit = flat / (norm + self.eps)
        unit = torch.where(torch.isnan(unit), torch.zeros_like(unit), unit)
        similarity = (unit @ unit.t() + 1.0) / 2.0
        return similarity / similarity.sum(dim=1, keepdim=True)
