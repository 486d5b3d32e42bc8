"""SAKD's multi-path routing network between teacher and student."""
from typing import Optional

from torch import Tensor, nn

from .adapters import build_adapter
from .spot_table import SpotTable
from .teacher_reuse import TeacherPass, splice
from .utils import eval_mode


def _per_sample(gate: Tensor, like: Tensor) -> Tensor:
    return gate.view(-1, *([1] * (like.dim() - 1)))


class RoutingNetwork(nn.Module):
    """Per-sample mix of teacher and student segments (the "graft" net).

    Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
    (arXiv 2205.02399). Teacher and student are cut at M feature spots
    p_1 < ... < p_M; S_m, T_m are their segments from spot m-1 (the image
    for m = 1) to spot m, and S_{M+1}, T_{M+1} run on to the logits.
    H_m (``hints[m]``) maps student features to the teacher's shape and
    A_m (``anti_hints[m]``) the other way. With the per-sample gates a_m
    (1: the teacher computes segment m) and a_out for the logits::

        h_S = h_T = x
        for m in 1..M:
            u_S = S_m(h_S);  u_T = T_m(h_T)
            h_T = (1 - a_m) H_m(u_S) + a_m u_T
            h_S = (1 - a_m) u_S + a_m A_m(u_T)
        z = (1 - a_out) S_{M+1}(h_S) + a_out T_{M+1}(h_T)

    With 0/1 gates every sample takes one path: all ones is the teacher,
    all zeros the student. Both adapters run on the whole batch and the
    gates mask by multiplication, as in the authors' code.

    What runs how, and why: the student runs in eval mode (its BN uses and
    keeps its running statistics; its train/eval flags are restored
    afterwards, also on error); the teacher runs in whatever mode it is in
    (eval for MMRazor's frozen teacher). Both run with *detached
    parameters*: the routing loss reaches the inputs of every segment, so
    it trains the adapters and, through the gates, the policy, but it never
    reaches teacher or student weights. The authors step the policy and
    adapters with their own optimizer and then throw away the routing
    loss's student gradient; detaching gives the same updates from a single
    MMEngine optimizer. The adapters run in this module's own mode (train
    during training, so their BN uses batch statistics over all samples).

    The spots, their shapes and the executors come from the
    :class:`~mmsakd.models.sakd.spot_table.SpotTable` (resolved and validated
    once); the networks are referenced, not registered as submodules, so
    ``parameters()`` and ``state_dict()`` hold only the adapters.

    Args:
        table (SpotTable): The spot table.
    """

    def __init__(self, table: SpotTable):
        super().__init__()
        # a plain tuple keeps the networks out of the module tree
        self._executors = tuple(table.executors)
        self.spots = tuple(table.boundaries)
        self.hints = nn.ModuleList()
        self.anti_hints = nn.ModuleList()
        for names, (s_shape, t_shape) in zip(table.names, table.shapes):
            try:
                self.hints.append(build_adapter(s_shape, t_shape))
                self.anti_hints.append(build_adapter(t_shape, s_shape))
            except ValueError as err:
                raise ValueError(f'spot {names}: {err}') from err
        # the algorithm builds this after the networks may have moved
        param = next(self._executors[0].model.parameters(), None)
        if param is not None:
            self.to(param.device)

    def forward(self,
                inputs: Tensor,
                gates: Tensor,
                teacher_pass: Optional[TeacherPass] = None) -> Tensor:
        """Logits of the routed mix.

        Args:
            inputs (Tensor): Images (B, C, H, W), as fed to both networks.
            gates (Tensor): (B, M + 1) decisions, 1 for the teacher and 0
                for the student at each feature spot, then the logits. Their
                gradient is kept (straight-through gates reach the policy).
            teacher_pass (TeacherPass, optional): The frozen teacher's own
                pass (:class:`~mmsakd.models.sakd.teacher_reuse.
                TeacherTaps`), taken over here. Its tensor at the first spot
                is T_1(inputs), used as it is. With its graph, where every
                sample picked the teacher at all spots before a teacher
                segment, that segment's input is the teacher's own tensor
                bit for bit, so its output is taken from the pass
                (:func:`~mmsakd.models.sakd.teacher_reuse.splice`): the same
                values and gradients, one segment forward fewer. Deciding
                that reads the gates on the host once. None computes every
                segment.

        Returns:
            Tensor: (B, num_classes) mixed logits.
        """
        num_gates = len(self.spots) + 1
        if tuple(gates.shape) != (inputs.shape[0], num_gates):
            raise ValueError(
                f'gates must have shape (batch, {num_gates}) = '
                f'({inputs.shape[0]}, {num_gates}), one per feature '
                f'spot and one for the logits; got {tuple(gates.shape)}')
        student, teacher = self._executors
        teacher_first, reused_pass = None, []
        if teacher_pass is not None and self.spots:
            everywhere = [True] * len(self.spots)
            if teacher_pass.graph:
                # the one host read of the pass: which spots every sample
                # took the teacher at (the gates are exactly 0 or 1)
                everywhere = gates[:, :-1].detach().eq(1).all(dim=0).tolist()
            teacher_first, reused_pass = teacher_pass.take(everywhere)
        del teacher_pass  # what is not reused is freed now
        reused = max(len(reused_pass) - 1, 0)
        with eval_mode(student.model):
            h_s = h_t = inputs
            prev_s = prev_t = None
            for m, (spot_s, spot_t) in enumerate(self.spots):
                u_s = student.run(h_s, prev_s, spot_s, detach_params=True)
                if m == 0 and teacher_first is not None:
                    u_t = teacher_first
                elif 0 < m <= reused:
                    u_t = splice(h_t, reused_pass[m - 1], reused_pass[m])
                else:
                    u_t = teacher.run(h_t, prev_t, spot_t, detach_params=True)
                a_s = _per_sample(gates[:, m], u_s)
                a_t = _per_sample(gates[:, m], u_t)
                h_t = (1 - a_t) * self.hints[m](u_s) + a_t * u_t
                h_s = (1 - a_s) * u_s + a_s * self.anti_hints[m](u_t)
                prev_s, prev_t = spot_s, spot_t
            z_s = student.run(h_s, prev_s, detach_params=True)
            if self.spots and reused == len(self.spots):
                z_t = splice(h_t, reused_pass[-2], reused_pass[-1])
            else:
                z_t = teacher.run(h_t, prev_t, detach_params=True)
        a_out = _per_sample(gates[:, -1], z_s)
        return (1 - a_out) * z_s + a_out * z_t
