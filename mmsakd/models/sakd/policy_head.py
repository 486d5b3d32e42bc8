"""The SAKD policy: where to distill, per sample and per spot."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmsakd.registry import MODELS

INITS = ('distill_all', 'default')


def gumbel_softmax_st(logits: Tensor, tau: float) -> Tensor:
    """Straight-through hard Gumbel-softmax over the last dimension.

    The forward value is the one-hot ``argmax(logits + g)`` (a true sample of
    ``Categorical(softmax(logits))``), exactly 0/1; the backward pass is the
    gradient of ``softmax((logits + g) / tau)``. The noise comes from torch's
    global generator, which MMEngine seeds and mmsakd's ``RNGStateHook``
    saves, so a run is reproducible and resumes exactly.

    The reference returns ``(y_hard - y_soft).detach() + y_soft``, which is
    0/1 only up to rounding; ``y_hard + (y_soft - y_soft.detach())`` has the
    same gradient and an exact forward value.
    """
    u = torch.rand_like(logits)
    gumbel = -torch.log(-torch.log(u + 1e-20) + 1e-20)
    y_soft = F.softmax((logits + gumbel) / tau, dim=-1)
    y_hard = F.one_hot(y_soft.argmax(dim=-1), logits.shape[-1])
    return y_hard.to(y_soft.dtype) + (y_soft - y_soft.detach())


@MODELS.register_module()
class SpotPolicyHead(BaseModule):
    """The policy network of SAKD.

    J. Song, Y. Chen, J. Ye and M. Song, "Spot-adaptive Knowledge
    Distillation", IEEE TIP 31, 2022, https://arxiv.org/abs/2205.02399.

    A single linear layer reads the detached pooled (penultimate) features of
    teacher and student, ``cat([f_T, f_S])``, and gives two logits per
    decision: one decision per feature spot plus the last one for the logits
    spot. Component 0 of a pair means "distill here / route through the
    teacher". A straight-through hard Gumbel-softmax (temperature ``tau``)
    turns them into gates that are exactly 0 or 1 in the forward pass.

    With ``init='distill_all'`` (the reference for homogeneous pairs) the
    bias of every component 0 starts at ``+init_bias`` (10): P(distill) =
    sigmoid(10) ~ 0.99995, so training starts by distilling everywhere. The
    reference adds it in place on PyTorch 1.6; here it is done under
    ``no_grad`` at construction. ``init='default'`` keeps PyTorch's Linear
    init (the reference for heterogeneous pairs: decisions near 50/50).

    Args:
        in_channels (int): Teacher plus student pooled feature channels.
        num_decisions (int): Feature spots + 1 (the logits spot).
        tau (float): Gumbel-softmax temperature. Defaults to 5.0, fixed in
            the reference; :meth:`set_tau` changes it (e.g. from a hook).
        init (str): ``'distill_all'`` or ``'default'``.
        init_bias (float): The bias added for ``'distill_all'``.
        init_cfg (dict, optional): MMEngine init config. Defaults to None
            (keep the initialisation above).

    Example:
        >>> sakd = dict(policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0,
        ...                         init='distill_all'))
    """

    def __init__(self,
                 in_channels: int,
                 num_decisions: int,
                 tau: float = 5.0,
                 init: str = 'distill_all',
                 init_bias: float = 10.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (isinstance(num_decisions, int) and num_decisions >= 1):
            raise ValueError('policy num_decisions must be an int >= 1 '
                             f'(feature spots + 1), got {num_decisions!r}')
        if init not in INITS:
            raise ValueError(f'sakd.policy.init must be one of {INITS}, got '
                             f'{init!r}')
        self.num_decisions = num_decisions
        self.init = init
        self.set_tau(tau)
        self.fc = nn.Linear(in_channels, 2 * num_decisions)
        if init == 'distill_all':
            with torch.no_grad():
                self.fc.bias[0::2] += init_bias

    def set_tau(self, tau: float) -> None:
        """Set the Gumbel-softmax temperature (> 0)."""
        if not tau > 0:
            raise ValueError(f'sakd.policy.tau must be > 0, got {tau!r}')
        self.tau = float(tau)

    def forward(self, t_feat: Tensor, s_feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Sample the decisions of a batch.

        Args:
            t_feat (Tensor): Teacher pooled features, (B, C_T, ...).
            s_feat (Tensor): Student pooled features, (B, C_S, ...).

        Returns:
            tuple[Tensor, Tensor]: ``gates`` (B, num_decisions), exactly 0/1,
            differentiable w.r.t. the policy through the straight-through
            estimator; and the policy ``logits`` (B, num_decisions, 2).
        """
        x = torch.cat([t_feat.detach().flatten(1),
                       s_feat.detach().flatten(1)],
                      dim=1)
        logits = self.fc(x).view(x.shape[0], self.num_decisions, 2)
        return gumbel_softmax_st(logits, self.tau)[..., 0], logits
