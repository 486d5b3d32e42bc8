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
"""
import functools
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .segments import SegmentExecutor, _last


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


class TeacherTaps:
    """Forward hooks that keep the teacher's tensors at given boundaries
    from its main pass, with the autograd graph between them.

    Inside :meth:`capture` the teacher's main pass records its graph from
    the first boundary on: the hook on that boundary's module replaces its
    output by a clone of a detached copy that requires gradients (same
    values; the graph starts there) and turns gradient recording on for
    the rest of the pass (MMRazor runs a frozen teacher under ``no_grad``,
    whose exit restores the previous mode; :meth:`capture` restores it
    too). The teacher's parameters are frozen, so only activations are
    recorded. Outside :meth:`capture` the hooks do nothing.

    Args:
        executor (SegmentExecutor): The teacher's executor.
        boundaries (Sequence[int]): Boundary indices in execution order (the
            spots', then the logits').

    Attributes:
        supported (bool): Whether every boundary is the output of a known
            call of a module (not so for hand-described units); hooks are
            only registered when it is.
    """

    def __init__(self, executor: SegmentExecutor, boundaries: Sequence[int]):
        self.targets: List[Tuple[str, int]] = [
            executor.boundary_call(b) for b in boundaries
        ]
        self.supported = all(
            isinstance(k, int) and k >= -1 for _, k in self.targets)
        self._active = False
        self._calls: Dict[str, int] = {}
        self._captured: List[Optional[Tuple[Tensor, int]]] = []
        if not self.supported:
            return
        for path in dict.fromkeys(p for p, _ in self.targets):
            module = executor.model.get_submodule(path)
            module.register_forward_hook(functools.partial(self._hook, path))

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Keep the tensors of the teacher pass run inside the block."""
        grad_mode = torch.is_grad_enabled()
        self._calls = {}
        self._captured = [None] * len(self.targets)
        self._active = True
        try:
            yield
        finally:
            self._active = False
            torch.set_grad_enabled(grad_mode)

    def take(self) -> List[Optional[Tensor]]:
        """The captured tensors (None where a boundary was not seen, or was
        modified in place after it was seen), handing them over: the taps
        keep no reference, so an unused graph is freed with the list."""
        captured, self._captured = self._captured, []
        return [
            None if c is None or c[0]._version != c[1] else c[0]
            for c in captured
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
            tensor = _last(output)
            if not isinstance(tensor, Tensor):
                continue
            if j == 0:
                # the root of the recorded graph; a clone, so that the
                # rest of the forward may work in place on it
                torch.set_grad_enabled(True)
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
