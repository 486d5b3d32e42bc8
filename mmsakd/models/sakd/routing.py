"""SAKD's multi-path routing network between teacher and student."""
from typing import Sequence, Tuple

from torch import Tensor, nn

from .adapters import build_adapter
from .segments import LOGITS_PATH, SegmentExecutor

Spot = Tuple[str, str]


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

    The networks are referenced, not registered as submodules: they belong
    to the distillation algorithm, so ``parameters()`` and ``state_dict()``
    hold only the adapters.

    Args:
        student (nn.Module): The student classifier.
        teacher (nn.Module): The teacher classifier.
        spots (Sequence[tuple[str, str]]): Feature spots as (student path,
            teacher path) pairs, in execution order; the logits spot is
            implicit and comes last.
        input_shape (Sequence[int]): Image shape without batch, for the dry
            run that sizes the adapters. Defaults to ``(3, 32, 32)``.
    """

    def __init__(self,
                 student: nn.Module,
                 teacher: nn.Module,
                 spots: Sequence[Spot],
                 input_shape: Sequence[int] = (3, 32, 32)):
        super().__init__()
        # a plain list keeps the networks out of the module tree
        self._executors = [SegmentExecutor(student), SegmentExecutor(teacher)]
        self.spots = self._check_spots(spots)
        # output shape of every unit, (student, teacher); kept so that users
        # of the network (e.g. the policy's input size) need no dry run
        self.unit_shapes = tuple(
            e.shapes(input_shape) for e in self._executors)
        s_shapes, t_shapes = self.unit_shapes
        self.spot_shapes = [(s_shapes[s], t_shapes[t]) for s, t in self.spots]
        self.hints = nn.ModuleList()
        self.anti_hints = nn.ModuleList()
        for (s, t), (s_shape, t_shape) in zip(self.spots, self.spot_shapes):
            try:
                self.hints.append(build_adapter(s_shape, t_shape))
                self.anti_hints.append(build_adapter(t_shape, s_shape))
            except ValueError as err:
                raise ValueError(f'spot ({s!r}, {t!r}): {err}') from err
        # the algorithm may build this after moving the networks
        param = next(student.parameters(), None)
        if param is not None:
            self.to(param.device)

    @property
    def student_executor(self) -> SegmentExecutor:
        """SegmentExecutor: Runs the student's segments."""
        return self._executors[0]

    @property
    def teacher_executor(self) -> SegmentExecutor:
        """SegmentExecutor: Runs the teacher's segments."""
        return self._executors[1]

    @property
    def num_spots(self) -> int:
        """int: Number of feature spots M."""
        return len(self.spots)

    @property
    def num_gates(self) -> int:
        """int: Gates per sample, M feature spots plus the logits."""
        return len(self.spots) + 1

    def _check_spots(self, spots: Sequence[Spot]) -> Tuple[Spot, ...]:
        checked = []
        last = (-1, -1)
        for spot in spots:
            if (not isinstance(spot, (tuple, list)) or len(spot) != 2
                    or not all(isinstance(p, str) for p in spot)):
                raise ValueError('each spot must be a (student path, '
                                 f'teacher path) pair, got {spot!r}')
            where = []
            for executor, path, role in zip(self._executors, spot,
                                            ('student', 'teacher')):
                try:
                    index = executor.index(path)
                except ValueError as err:
                    raise ValueError(f'{role} side of spot {tuple(spot)!r}: '
                                     f'{err}') from err
                if executor.paths[index] == LOGITS_PATH:
                    raise ValueError(
                        f'spot {tuple(spot)!r}: the logits are the implicit '
                        'last spot of the routing network, not a feature '
                        'spot; list only feature spots')
                where.append(index)
            for index, prev, role in zip(where, last, ('student', 'teacher')):
                if index <= prev:
                    raise ValueError(
                        f'spot {tuple(spot)!r} does not come after the '
                        f'previous spot {checked[-1]!r} in the {role}: '
                        'spots must be strictly increasing in execution '
                        'order in both networks')
            executors = self._executors
            checked.append(
                (executors[0].paths[where[0]], executors[1].paths[where[1]]))
            last = tuple(where)
        return tuple(checked)

    def forward(self, inputs: Tensor, gates: Tensor) -> Tensor:
        """Logits of the routed mix.

        Args:
            inputs (Tensor): Images (B, C, H, W), as fed to both networks.
            gates (Tensor): (B, M + 1) decisions, 1 for the teacher and 0
                for the student at each feature spot, then the logits. Their
                gradient is kept (straight-through gates reach the policy).

        Returns:
            Tensor: (B, num_classes) mixed logits.
        """
        if tuple(gates.shape) != (inputs.shape[0], self.num_gates):
            raise ValueError(
                f'gates must have shape (batch, {self.num_gates}) = '
                f'({inputs.shape[0]}, {self.num_gates}), one per feature '
                f'spot and one for the logits; got {tuple(gates.shape)}')
        student, teacher = self._executors
        modes = [(m, m.training) for m in student.model.modules()]
        student.model.eval()
        try:
            h_s = h_t = inputs
            prev_s = prev_t = None
            for m, (spot_s, spot_t) in enumerate(self.spots):
                u_s = student.run(h_s, prev_s, spot_s, detach_params=True)
                u_t = teacher.run(h_t, prev_t, spot_t, detach_params=True)
                a_s = _per_sample(gates[:, m], u_s)
                a_t = _per_sample(gates[:, m], u_t)
                h_t = (1 - a_t) * self.hints[m](u_s) + a_t * u_t
                h_s = (1 - a_s) * u_s + a_s * self.anti_hints[m](u_t)
                prev_s, prev_t = spot_s, spot_t
            z_s = student.run(h_s, prev_s, detach_params=True)
            z_t = teacher.run(h_t, prev_t, detach_params=True)
        finally:
            for module, mode in modes:
                module.training = mode
        a_out = _per_sample(gates[:, -1], z_s)
        return (1 - a_out) * z_s + a_out * z_t
