"""SAKD's multi-path routing network between teacher and student."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .adapters import build_adapter
from .segments import SegmentExecutor, eval_mode
from .teacher_reuse import splice

Shape = Tuple[int, ...]


def _per_sample(gate: Tensor, like: Tensor) -> Tensor:
    return gate.view(-1, *([1] * (like.dim() - 1)))


def _channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) \
        if x.dim() == 4 else x


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

    The spots and executors are the distiller's
    (:class:`~mmsakd.models.distillers.SpotAdaptiveDistiller` resolves and
    validates them once); the networks are referenced, not registered as
    submodules, so ``parameters()`` and ``state_dict()`` hold only the
    adapters.

    Args:
        executors (tuple[SegmentExecutor, SegmentExecutor]): Student and
            teacher executors.
        spots (Sequence[tuple[int, int]]): Feature spots as (student
            boundary, teacher boundary) indices, in execution order; the
            logits spot is implicit and comes last.
        shapes (Sequence[tuple[Shape, Shape]]): (student, teacher) feature
            shape at each spot, without the batch dimension.
        channels_last (bool): Run the pass on channels-last images (and
            teacher feature), so that every convolution of the pass, the
            adapters' included, works in that layout. A speed option, off
            by default: the convolutions accumulate in another order, so
            the routed logits differ from the default's by float rounding
            (about 1e-6 relative); the networks' own passes are untouched.
            On a 2-core CPU it makes the resnet56 -> resnet20 routing pass
            about 10 % faster.
        fold_teacher_bn (bool): Run the teacher's segments with their
            eval-mode BatchNorm folded into the convolutions before them
            (:meth:`SegmentExecutor.run` with ``fold_bn``; a frozen copy,
            made again whenever the teacher's weights change). A speed
            option, off by default: values equal up to float rounding, as
            ``channels_last``; a teacher in train mode runs unfolded.
    """

    def __init__(self,
                 executors: Tuple[SegmentExecutor, SegmentExecutor],
                 spots: Sequence[Tuple[int, int]],
                 shapes: Sequence[Tuple[Shape, Shape]],
                 channels_last: bool = False,
                 fold_teacher_bn: bool = False):
        super().__init__()
        self.channels_last = bool(channels_last)
        self.fold_teacher_bn = bool(fold_teacher_bn)
        # a plain tuple keeps the networks out of the module tree
        self._executors = tuple(executors)
        self.spots = tuple(spots)
        self.hints = nn.ModuleList()
        self.anti_hints = nn.ModuleList()
        for (s, t), (s_shape, t_shape) in zip(self.spots, shapes):
            names = (executors[0].names[s], executors[1].names[t])
            try:
                self.hints.append(build_adapter(s_shape, t_shape))
                self.anti_hints.append(build_adapter(t_shape, s_shape))
            except ValueError as err:
                raise ValueError(f'spot {names}: {err}') from err
        # the algorithm builds this after the networks may have moved
        param = next(executors[0].model.parameters(), None)
        if param is not None:
            self.to(param.device)

    def forward(
            self,
            inputs: Tensor,
            gates: Tensor,
            teacher_first: Optional[Tensor] = None,
            teacher_pass: Optional[Sequence[Optional[Tensor]]] = None
    ) -> Tensor:
        """Logits of the routed mix.

        Args:
            inputs (Tensor): Images (B, C, H, W), as fed to both networks.
            gates (Tensor): (B, M + 1) decisions, 1 for the teacher and 0
                for the student at each feature spot, then the logits. Their
                gradient is kept (straight-through gates reach the policy).
            teacher_first (Tensor, optional): The teacher's output at the
                first spot, T_1(inputs), when the caller has it already (the
                frozen teacher's own pass computes exactly that tensor);
                None computes it.
            teacher_pass (Sequence[Tensor | None], optional): The teacher's
                own pass at each feature spot and at the logits, with the
                autograd graph from each to the next
                (:class:`~mmsakd.models.sakd.teacher_reuse.TeacherTaps`).
                Where every sample picked the teacher at all spots before
                a teacher segment, that segment's input is the teacher's
                own tensor bit for bit, so its output is taken from this
                pass (:func:`~mmsakd.models.sakd.teacher_reuse.splice`):
                the same values and gradients, one segment forward fewer.
                Deciding that reads the gates on the host once. A list is
                emptied once read, so that an unused graph is freed before
                the pass runs. None (or a None entry) computes every
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
        reused, reused_pass = self._reusable(gates, teacher_pass)
        if isinstance(teacher_pass, list):
            # the caller's call frames hold the list for the whole pass:
            # emptying it frees what is not reused (an unused graph) now
            teacher_pass.clear()
        del teacher_pass
        folding = dict(detach_params=True)
        if self.fold_teacher_bn:
            folding.update(fold_bn=True)
        if self.channels_last:
            inputs = _channels_last(inputs)
            if teacher_first is not None:
                teacher_first = _channels_last(teacher_first)
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
                    u_t = teacher.run(h_t, prev_t, spot_t, **folding)
                a_s = _per_sample(gates[:, m], u_s)
                a_t = _per_sample(gates[:, m], u_t)
                h_t = (1 - a_t) * self.hints[m](u_s) + a_t * u_t
                h_s = (1 - a_s) * u_s + a_s * self.anti_hints[m](u_t)
                prev_s, prev_t = spot_s, spot_t
            z_s = student.run(h_s, prev_s, detach_params=True)
            if self.spots and reused == len(self.spots):
                z_t = splice(h_t, reused_pass[-2], reused_pass[-1])
            else:
                z_t = teacher.run(h_t, prev_t, **folding)
        a_out = _per_sample(gates[:, -1], z_s)
        return (1 - a_out) * z_s + a_out * z_t

    def _reusable(
        self, gates: Tensor, teacher_pass: Optional[Sequence[Optional[Tensor]]]
    ) -> Tuple[int, list]:
        """How many teacher segments after the first spot can be taken from
        the teacher's own pass (segment m + 1 when every sample picked the
        teacher at spots 1..m), and the tensors that needs."""
        if teacher_pass is None or not self.spots:
            return 0, []
        if len(teacher_pass) != len(self.spots) + 1:
            raise ValueError(
                f'teacher_pass must hold {len(self.spots) + 1} tensors (one '
                f'per feature spot, then the logits), got {len(teacher_pass)}')
        # the one host read of the pass: which spots every sample took the
        # teacher at (the gates are exactly 0 or 1 in the forward pass)
        teacher_everywhere = gates[:, :-1].detach().eq(1).all(dim=0).tolist()
        reused = 0
        for m in range(1, len(self.spots) + 1):
            if not (teacher_everywhere[m - 1] and teacher_pass[m - 1]
                    is not None and teacher_pass[m] is not None):
                break
            reused = m
        return reused, list(teacher_pass[:reused + 1]) if reused else []
