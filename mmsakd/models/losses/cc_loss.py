import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsakd.registry import MODELS
from .utils import check_feature, check_same_batch


@MODELS.register_module()
class CCLoss(nn.Module):
    """Correlation congruence knowledge distillation.

    B. Peng, X. Jin, J. Liu, S. Zhou, Y. Wu, Y. Liu, D. Li and Z. Zhang,
    "Correlation Congruence for Knowledge Distillation", ICCV 2019,
    https://arxiv.org/abs/1904.01802.

    Student and teacher features are flattened per sample and mapped to a
    ``feat_dim``-wide space by two linear embeddings, ``e_s = embed_s(s)``
    and ``e_t = embed_t(t)``, which this loss owns (so the optimizer that
    trains the distiller's losses trains them; RepDistiller's
    ``LinearEmbed``, default PyTorch ``nn.Linear`` initialisation). Then,
    depending on ``mode``:

    * ``'repdistiller'`` (default): the loss RepDistiller runs, from code the
      CC authors shared with it, and therefore what SAKD runs. With
      ``d_i = |e_s,i - e_t,i|`` (element-wise), consecutive samples of the
      batch are correlated:

      .. math::

          L = \\frac{1}{N-1} \\sum_{i=1}^{N-1} \\sum_c d_{i,c}\\, d_{i+1,c}

      It needs ``N >= 2``; a batch of one raises ``ValueError`` (the
      reference returns NaN).
    * ``'gaussian_rbf'``: the paper's formulation. Each embedding is
      L2-normalised, the ``N x N`` correlation matrix uses the Gaussian RBF
      kernel ``exp(-gamma ||x - y||^2)`` through its order-``p_order`` Taylor
      expansion ``sum_p exp(-2 gamma) (2 gamma)^p / p! (x^T y)^p``, and the
      loss is the mean squared difference of the student and teacher
      matrices (``1 / N^2`` times the squared Frobenius distance), with
      ``gamma = 0.4`` and ``p_order = 2`` by default. Normalisation uses
      :func:`torch.nn.functional.normalize` (norm clamped at ``1e-12``).

    The teacher feature is detached (RepDistiller computes it without
    gradient). The teacher embedding's output is not detached by default,
    so ``embed_t`` is trained by this loss, as in RepDistiller's CC baseline.
    The SAKD reference code detaches it, which leaves ``embed_t`` at its
    random initialisation for the whole run; set
    ``detach_teacher_embed=True`` to reproduce SAKD. Its parameters then
    stop requiring gradients, so they never get one, not even a zero from
    a step that selects no sample, and the optimizer's weight decay and
    momentum never move them.

    The ``'repdistiller'`` correlation pairs consecutive samples and needs
    two (``min_samples = 2``).

    Args:
        student_channels (int): Flattened size of one student sample, e.g.
            the pooled penultimate width.
        teacher_channels (int): Flattened size of one teacher sample.
        feat_dim (int): Embedding width. Defaults to 128.
        mode (str): ``'repdistiller'`` or ``'gaussian_rbf'``, see above.
            Defaults to ``'repdistiller'``.
        gamma (float): RBF kernel parameter for ``'gaussian_rbf'``.
            Defaults to 0.4.
        p_order (int): Taylor expansion order for ``'gaussian_rbf'``.
            Defaults to 2.
        detach_teacher_embed (bool): Stop the gradient at the teacher
            embedding's output (SAKD) instead of training ``embed_t``
            (RepDistiller). Defaults to False.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # SAKD: resnet56 -> resnet20, pooled 64-d features, beta 0.02
        >>> distill_losses = dict(
        ...     loss_cc=dict(
        ...         type='mmsakd.CCLoss',
        ...         student_channels=64,
        ...         teacher_channels=64,
        ...         detach_teacher_embed=True,
        ...         loss_weight=0.02))
        >>> loss_forward_mappings = dict(
        ...     loss_cc=dict(
        ...         s_feature=dict(recorder='s_gap', from_student=True),
        ...         t_feature=dict(recorder='t_gap', from_student=False)))
    """

    MODES = ('repdistiller', 'gaussian_rbf')
    min_samples = 2

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 feat_dim: int = 128,
                 mode: str = 'repdistiller',
                 gamma: float = 0.4,
                 p_order: int = 2,
                 detach_teacher_embed: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f'mode must be one of {self.MODES}, got {mode!r}')
        if p_order < 0:
            raise ValueError(f'p_order must be >= 0, got {p_order}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.mode = mode
        self.gamma = gamma
        self.p_order = p_order
        self.loss_weight = loss_weight
        self.embed_s = nn.Linear(student_channels, feat_dim)
        self.embed_t = nn.Linear(teacher_channels, feat_dim)
        self.detach_teacher_embed = detach_teacher_embed

    @property
    def detach_teacher_embed(self) -> bool:
        """Whether ``embed_t`` is frozen (SAKD) or trained (RepDistiller)."""
        return self._detach_teacher_embed

    @detach_teacher_embed.setter
    def detach_teacher_embed(self, value: bool) -> None:
        self._detach_teacher_embed = bool(value)
        self.embed_t.requires_grad_(not value)

    def forward(self, s_feature: torch.Tensor,
                t_feature: torch.Tensor) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feature (torch.Tensor): Student feature, (N, C) or
                (N, C, H, W) with ``C*H*W == student_channels``.
            t_feature (torch.Tensor): Teacher feature, (N, C') or
                (N, C', H', W') with ``C'*H'*W' == teacher_channels``.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        check_feature(s_feature, 's_feature')
        check_feature(t_feature, 't_feature')
        check_same_batch('s_feature', s_feature, 't_feature', t_feature)
        s_flat = s_feature.flatten(1)
        t_flat = t_feature.detach().flatten(1)
        if s_flat.size(1) != self.student_channels:
            raise ValueError(f's_feature has {s_flat.size(1)} values per '
                             f'sample, student_channels is '
                             f'{self.student_channels}')
        if t_flat.size(1) != self.teacher_channels:
            raise ValueError(f't_feature has {t_flat.size(1)} values per '
                             f'sample, teacher_channels is '
                             f'{self.teacher_channels}')
        if self.mode == 'repdistiller' and s_flat.size(0) < 2:
            raise ValueError(
                's_feature has batch size 1; CCLoss(mode="repdistiller") '
                'correlates consecutive samples and needs at least 2')
        e_s = self.embed_s(s_flat)
        e_t = self.embed_t(t_flat)
        if self.detach_teacher_embed:
            e_t = e_t.detach()
        if self.mode == 'repdistiller':
            delta = (e_s - e_t).abs()
            loss = (delta[:-1] * delta[1:]).sum(dim=1).mean()
        else:
            loss = F.mse_loss(self.correlation(e_s), self.correlation(e_t))
        return self.loss_weight * loss

    def correlation(self, embedding: torch.Tensor) -> torch.Tensor:
        """Taylor-expanded Gaussian RBF correlation matrix, (N, N)."""
        unit = F.normalize(embedding, p=2, dim=1)
        similarity = unit @ unit.t()
        two_gamma = 2 * self.gamma
        # the p = 0 term is a constant; starting from it keeps pow(0) out
        # of the graph
        corr = torch.full_like(similarity, math.exp(-two_gamma))
        for p in range(1, self.p_order + 1):
            coef = math.exp(-two_gamma) * two_gamma**p / math.factorial(p)
            corr = corr + coef * similarity.pow(p)
        return corr
