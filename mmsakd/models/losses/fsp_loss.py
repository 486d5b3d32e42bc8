from typing import List, Sequence

import torch
import torch.nn as nn

from mmsakd.registry import MODELS
from .utils import check_feature, match_spatial_size


@MODELS.register_module()
class FSPLoss(nn.Module):
    """Flow of solution procedure (FSP) distillation.

    J. Yim, D. Joo, J. Bae and J. Kim, "A Gift from Knowledge Distillation:
    Fast Optimization, Network Minimization and Transfer Learning",
    CVPR 2017.

    Feature maps are paired consecutively: map ``i`` with map ``i + 1`` for
    ``i = 0 .. K-2`` of a sequence of ``K`` maps. For one pair, a bottom map
    (N, C_1, H, W) and a top map (N, C_2, H, W), the FSP matrix is the
    spatially averaged outer product of their channels,

    .. math::

        G_{n,a,b} = \\frac{1}{HW} \\sum_{h,w} F^{top}_{n,a,h,w}\\,
                    F^{bot}_{n,b,h,w}, \\qquad G \\in
                    \\mathbb{R}^{N \\times C_2 \\times C_1},

    and the loss is the mean squared difference between the student's and
    the teacher's matrices, summed over the ``K - 1`` pairs.

    Conventions of RepDistiller, kept here: the pairs are consecutive maps
    of one list (RepDistiller passes every stage output except the pooled
    vector); when the two maps of a pair differ in spatial size the larger is
    average-pooled to the smaller (per axis, see :func:`match_spatial_size`);
    each pair contributes a plain mean over batch and matrix entries, with
    equal weights. The paper sums the squared L2 distances of the matrices
    with per-pair weights ``lambda_i`` and averages over samples, i.e. a
    constant factor ``C_1 C_2`` per pair away; use ``loss_weight`` to scale.
    The matrices of student and teacher must have the same shape, so the
    ``i``-th student map must have as many channels as the ``i``-th teacher
    map (RepDistiller raises ``ValueError`` otherwise, so does this loss).
    The teacher maps are detached, as RepDistiller computes them without
    gradient. RepDistiller and the paper use this loss as a separate first
    stage before the task training; scheduling it is up to the algorithm.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Example:
        >>> # a backbone that returns a tuple of stage outputs
        >>> distill_losses = dict(loss_fsp=dict(type='mmsakd.FSPLoss'))
        >>> loss_forward_mappings = dict(
        ...     loss_fsp=dict(
        ...         s_feats=dict(recorder='s_stages', from_student=True),
        ...         t_feats=dict(recorder='t_stages', from_student=False)))
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, s_feats: Sequence[torch.Tensor],
                t_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Compute the weighted loss.

        Args:
            s_feats (Sequence[torch.Tensor]): Student maps
                ``[(N, C_0, H_0, W_0), ..., (N, C_{K-1}, ...)]``, ``K >= 2``,
                paired consecutively.
            t_feats (Sequence[torch.Tensor]): Teacher maps, as many as the
                student's, with the same channel counts position by
                position.

        Returns:
            torch.Tensor: The scalar loss times ``loss_weight``.
        """
        differences = self._differences(s_feats, t_feats)
        loss = sum(d.pow(2).mean() for d in differences)
        return self.loss_weight * loss

    def per_sample(self, s_feats: Sequence[torch.Tensor],
                   t_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss of every sample, (N, ); ``forward`` is their mean (each
        pair's matrices have the same size for every sample).

        Args:
            s_feats (Sequence[torch.Tensor]): As ``forward``.
            t_feats (Sequence[torch.Tensor]): As ``forward``.
        """
        terms = sum(
            d.pow(2).flatten(1).mean(1)
            for d in self._differences(s_feats, t_feats))
        return self.loss_weight * terms

    def _differences(self, s_feats: Sequence[torch.Tensor],
                     t_feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Student minus teacher FSP matrix, per consecutive pair."""
        self._check_inputs(s_feats, t_feats)
        s_fsp = self.fsp_matrices(s_feats)
        t_fsp = self.fsp_matrices([t.detach() for t in t_feats])
        return [s - t for s, t in zip(s_fsp, t_fsp)]

    @staticmethod
    def fsp_matrices(feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """FSP matrices of consecutive maps, each (N, C_{i+1}, C_i)."""
        matrices = []
        for bottom, top in zip(feats[:-1], feats[1:]):
            bottom, top = match_spatial_size(bottom, top)
            bottom = bottom.flatten(2)
            top = top.flatten(2)
            matrices.append(
                torch.bmm(top, bottom.transpose(1, 2)) / bottom.size(2))
        return matrices

    @staticmethod
    def _check_inputs(s_feats: Sequence[torch.Tensor],
                      t_feats: Sequence[torch.Tensor]) -> None:
        for name, feats in (('s_feats', s_feats), ('t_feats', t_feats)):
            if not isinstance(feats, (list, tuple)):
                raise TypeError(f'{name} must be a list or tuple of feature '
                                f'maps, got {type(feats).__name__}')
            if len(feats) < 2:
                raise ValueError(f'{name} must hold at least 2 feature maps '
                                 f'to form an FSP matrix, got {len(feats)}')
            for i, feat in enumerate(feats):
                check_feature(feat, f'{name}[{i}]', ndims=(4, ))
        if len(s_feats) != len(t_feats):
            raise ValueError(f's_feats and t_feats must hold as many maps, '
                             f'got {len(s_feats)} and {len(t_feats)}')
        batch = s_feats[0].size(0)
        for i, (s, t) in enumerate(zip(s_feats, t_feats)):
            if s.size(0) != batch or t.size(0) != batch:
                raise ValueError(
                    f's_feats[{i}] and t_feats[{i}] must have the batch size '
                    f'of s_feats[0] ({batch}), got {s.size(0)} and '
                    f'{t.size(0)}')
            if s.size(1) != t.size(1):
                raise ValueError(
                    f's_feats[{i}] has {s.size(1)} channels but t_feats[{i}] '
                    f'has {t.size(1)}; FSP needs equal channel counts')
