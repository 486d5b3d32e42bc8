"""Reuse the frozen teacher's own pass in SAKD's routing pass.

Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022
(arXiv 2205.02399). In the routing pass the teacher's segment m + 1 runs on
``h_T = (1 - a_m) H_m(u_S) + a_m u_T``. Where every sample picked the
teacher at spots 1..m (``a = 1``), ``h_T`` is the teacher's own tensor at
spot m, bit for bit: the gates are exactly 0 or 1 in the forward pass
(:func:`~mmsakd.models.sakd.gumbel_softmax_st`), ``0 * H`` is zero for
finite adapter outputs, and ``1 * u`` is ``u``. The teacher's segment
then computes exactly what the teacher's main pass computed from that
tensor. With the main pass recording its graph from the first spot on,
the routing pass can take that pass's tensor and route the gradient
through its graph (:class:`TeacherTaps`, :func:`splice`) instead of
running the segment again: the same values and the same backward
operations, one teacher forward fewer. This is the case the policy starts
in for homogeneous pairs ("distill everywhere"), and where it often stays.

The teacher's first segment runs on the image in both passes, so its
output at the first spot is reused whatever the gates (no graph needed).
Both come from one channel: the taps capture a :class:`TeacherPass` that
the routing network takes over.
"""
import functools
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .executor import SegmentExecutor
from .utils import last_output


class _Splice(torch.autograd.Function):
    """Forward: the main pass's tensor ``output``; backward: the gradient
    of ``output`` with respect to its source tensor, through the main
    pass's own graph, passed on to ``x`` (whose value equals the source)."""

    @staticmethod
    def forward(ctx, x: Tensor, graph: Tuple[Tensor, Tensor]) -> Tensor:
        ctx.graph = graph
        return graph[1].detach()

    @staticmethod
    def backward(ctx, grad: Tensor):
        source, output = ctx.graph
        del ctx.graph
        (grad_source, ) = torch.autograd.grad(output, source, grad)
        return grad_source, None


def splice(x: Tensor, source: Tensor, output: Tensor) -> Tensor:
    """``output`` (computed from ``source`` in a recorded pass) in place of
    running that computation again on ``x``, whose value must equal
    ``source``'s; gradients reach ``x`` through the recorded graph. The
    recorded graph is used (and freed) by one backward pass."""
    return _Splice.apply(x, (source, output))


class TeacherPass:
    """The frozen teacher's own pass at its spots and logits, captured by
    :class:`TeacherTaps` for one routing pass.

    Args:
        tensors (list[Tensor | None]): The teacher's tensor at each feature
            spot and at the logits (None where not seen, or modified in
            place after it was seen).
        graph (bool): Whether the tensors after the first carry the
            autograd graph from each to the next (the pass ran with
            gradient recording from the first spot on).
    """

    def __init__(self, tensors: List[Optional[Tensor]], graph: bool):
        self._tensors = tensors
        self.graph = graph

    def take(
        self, teacher_everywhere: Sequence[bool]
    ) -> Tuple[Optional[Tensor], List[Tensor]]:
        """Hand the pass over to the routing network, keeping nothing (an
        unused graph is freed with the caller's last reference to it).

        Args:
            teacher_everywhere (Sequence[bool]): For each feature spot,
                whether every sample of the batch picked the teacher there.

        Returns:
            tuple: The teacher's tensor at the first spot, detached (None
            if not captured); and the tensors of the all-teacher prefix:
            ``k + 1`` tensors (spots 1..k+1, the logits after the last
            spot) when teacher segments 2..k+1 can be spliced in, else an
            empty list.
        """
        tensors, self._tensors = self._tensors, []
        first = tensors[0].detach() if tensors and tensors[0] is not None \
            else None
        reused = 0
        if self.graph:
            for m in range(1, len(tensors)):
                if not (teacher_everywhere[m - 1] and tensors[m - 1]
                        is not None and tensors[m] is not None):
                    break
                reused = m
        return first, tensors[:reused + 1] if reused else []


class TeacherTaps:
    """Forward hooks that keep the teacher's tensors at given boundaries
    from its main pass, optionally with the autograd graph between them.

    Inside :meth:`capture` the hooks record the output of each boundary's
    module call. With ``graph=True`` the caller runs the teacher's pass with
    gradient recording on (``torch.enable_grad()``); the hook on the first
    boundary then replaces its output by a clone of a detached copy that
    requires gradients (same values; the graph starts there), so that the
    rest of the pass records the graph of its activations (the teacher's
    parameters are frozen). Outside :meth:`capture` the hooks do nothing;
    :meth:`remove` takes them off the teacher.

    Args:
        executor (SegmentExecutor): The teacher's executor.
        boundaries (Sequence[int]): Boundary indices in execution order (the
            spots', then the logits').
    """

    def __init__(self, executor: SegmentExecutor, boundaries: Sequence[int]):
        self.targets: List[Tuple[str, int]] = [
            executor.boundary_call(b) for b in boundaries
        ]
        self._active = False
        self._graph = False
        self._calls: Dict[str, int] = {}
        self._captured: List[Optional[Tuple[Tensor, int]]] = []
        self._handles = [
            executor.model.get_submodule(path).register_forward_hook(
                functools.partial(self._hook, path))
            for path in dict.fromkeys(p for p, _ in self.targets)
        ]

    def remove(self) -> None:
        """Remove the hooks from the teacher."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextmanager
    def capture(self, graph: bool = False) -> Iterator[TeacherPass]:
        """Capture the teacher pass run inside the block; the yielded
        :class:`TeacherPass` is filled when the block ends."""
        self._calls = {}
        self._captured = [None] * len(self.targets)
        self._active, self._graph = True, graph
        captured = TeacherPass([], graph)
        try:
            yield captured
        finally:
            self._active = False
            taken, self._captured = self._captured, []
            captured._tensors = [
                None if c is None or c[0]._version != c[1] else c[0]
                for c in taken
            ]

    def _hook(self, path: str, module: nn.Module, inputs, output):
        if not self._active:
            return None
        call = self._calls.get(path, 0)
        self._calls[path] = call + 1
        replaced = None
        for j, (target, number) in enumerate(self.targets):
            if target != path or number not in (call, -1):
                continue
            tensor = last_output(output)
            if not isinstance(tensor, Tensor):
                continue
            if j == 0 and self._graph and torch.is_grad_enabled():
                # the root of the recorded graph; a clone, so that the
                # rest of the forward may work in place on it
                tensor = tensor.detach().requires_grad_().clone()
                replaced = tensor
            self._captured[j] = (tensor, tensor._version)
        if replaced is None:
            return None
        if isinstance(output, tuple):
            return (*output[:-1], replaced)
        if isinstance(output, list):
            return [*output[:-1], replaced]
        return replaced
