"""Run an image classifier as a chain of segments between spots.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399). An MMPretrain ``ImageClassifier`` (backbone -> neck ->
head) is a chain of *segments*: the backbone's units
(:mod:`~mmsakd.models.sakd.cutting`), then the neck and the head. The output
of each segment is a *boundary*, a tensor that the next segment takes as its
only input, and a spot is a boundary.

Every cut is verified by a dry run: the model's own forward and the chain of
segments must give exactly the same tensor at every boundary. The same dry
run names each boundary by the modules whose output it is: a recorder on
``backbone.layer4``, on the last activation of its last block, on ``neck`` or
``neck.gap`` reads the same tensor (or a view of it) and so the same spot.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .cutting import (Segment, described_segments, get_segment_describer,
                      trace_backbone, traced_segments)
from .utils import eval_mode, last_output, same_tensor


class _Chain(nn.Module):
    """Consecutive segments as one module, so that one
    ``functional_call`` detaches the parameters of all of them. It only
    references the segments' modules (the executor keeps it outside any
    module tree)."""

    def __init__(self, segments: Sequence[Segment]):
        super().__init__()
        self.segments = list(segments)
        self.links = nn.ModuleList(s.module for s in self.segments)
        self.params = list(self.named_parameters())

    def forward(self, x: Tensor) -> Tensor:
        for segment in self.segments:
            x = segment(x)
        return x


class Probe(NamedTuple):
    """What one dry run of the model's own forward saw.

    Attributes:
        boundaries (list[Tensor]): The tensor at every boundary.
        calls (list[tuple[str, Any]]): ``(module path, output)`` of every
            module call, in the order the calls ended.
        positions (list[int]): Index in ``calls`` of each boundary's call.
        image (Tensor, optional): The batch the forward ran on.
    """
    boundaries: List[Tensor]
    calls: List[Tuple[str, object]]
    positions: List[int]
    image: Optional[Tensor] = None


class SegmentExecutor:
    """Run an image classifier as a chain of segments between spots.

    The chain is the backbone's segments (cut automatically, see the module
    docstring), then ``neck`` (on the last backbone output alone) and the
    head (to the logits); running all of it equals ``model(x,
    mode='tensor')`` exactly, which the dry run of :meth:`probe` checks at
    every boundary. Boundaries are named by the modules whose output they
    are (``aliases``); the first name of each is its canonical spot name,
    e.g. ``backbone.layer1``, ``neck``, and ``head`` for the logits.

    The model is not copied: the executor runs the model's own modules.

    Args:
        model (nn.Module): An MMPretrain ``ImageClassifier`` or a module
            with the same ``backbone``, optional ``neck`` and ``head``
            attributes and ``forward(inputs, data_samples, mode)``.
        input_shape (Sequence[int]): Image shape without batch for the dry
            run that verifies the cuts and names the boundaries.

    Raises:
        TypeError: If the model cannot be cut; the message says why and how
            to register a describer.
        ValueError: If the chain does not reproduce the model's forward.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int]):
        self.model = model
        self._name = self._model_name(model)
        self._chains: Dict[Tuple[int, int], _Chain] = {}
        x = self.dry_input(input_shape)
        probe = self._verify(x, self._cut(model, x))
        self.aliases = self._names(probe)
        self._calls = self._call_numbers(probe)
        self._index = {}
        for i, names in enumerate(self.aliases):
            for name in names:
                self._index.setdefault(name, i)

    @staticmethod
    def _model_name(model: nn.Module) -> str:
        backbone = getattr(model, 'backbone', None)
        return (f'{type(model).__name__}({type(backbone).__name__})'
                if backbone is not None else type(model).__name__)

    def _cut(self, model: nn.Module, x: Tensor) -> list:
        """Set the segments; return the call log of one forward on x."""
        backbone = getattr(model, 'backbone', None)
        head = getattr(model, 'head', None)
        if not isinstance(backbone, nn.Module) or not isinstance(
                head, nn.Module):
            raise TypeError(
                f'cannot cut {self._name} into segments: SAKD needs an '
                'ImageClassifier-like chain with `backbone`, optional '
                '`neck` and `head` modules (MMPretrain ImageClassifier with '
                "mode='tensor' giving the logits)")
        tail = []
        neck = getattr(model, 'neck', None)
        if isinstance(neck, nn.Module):
            tail.append(Segment(neck, ('neck', 0), tuple_io=True))
        tail.append(Segment(head, ('head', 0), tuple_io=True))

        describer = get_segment_describer(backbone)
        try:
            if describer is not None:
                self._segments = described_segments(backbone, describer) + tail
            else:
                trace = trace_backbone(backbone)
                self._segments = traced_segments(trace) + tail
        except NotImplementedError as err:  # a describer's refusal
            raise TypeError(f'cannot cut the backbone of {self._name} into '
                            f'segments: {err}') from err
        except Exception as err:
            how = ('fix the describer' if describer is not None else
                   'register a describer with `@mmsakd.models.sakd.'
                   f'register_segment_describer({type(backbone).__name__})` '
                   'on a function that returns its units (lists of '
                   'submodule names run one after another) in forward order')
            raise TypeError(
                f'cannot cut the backbone of {self._name} into segments '
                f'that SAKD can run one at a time ({type(err).__name__}: '
                f'{err}); {how}. MMPretrain\'s VisionTransformer (ViT, '
                'DeiT) and SwinTransformer are described; other token '
                'models and multi-branch networks (HRNet) are not '
                'supported yet.') from err
        calls, versions = self._forward(x)
        if describer is None:
            # a cut whose tensor the forward later changes in place (e.g.
            # a BN output fed to an in-place ReLU) is not a boundary
            positions = self._find(calls)[:len(trace.cuts) - 1]
            mutated = {
                i
                for i, p in enumerate(positions)
                if last_output(calls[p][1])._version != versions[p]
            }
            if mutated:
                trace.cuts[:] = [
                    c for i, c in enumerate(trace.cuts) if i not in mutated
                ]
                self._segments = traced_segments(trace) + tail
        return calls

    def dry_input(self, input_shape: Sequence[int]) -> Tensor:
        """A fixed random batch of two images of ``input_shape``, from a
        private generator (the global random state is left alone)."""
        param = next(self.model.parameters(), None)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((2, *input_shape), generator=generator)
        if param is not None:
            x = x.to(device=param.device, dtype=param.dtype)
        return x

    def _forward(self, x: Tensor, context=None) -> Tuple[list, list]:
        """The model's own forward (eval, no grad) with every module call
        logged as ``(path, output)``, and each output's version counter
        right after the call."""
        calls, versions = [], []

        def log(module, inputs, output, path):
            calls.append((path, output))
            last = last_output(output)
            versions.append(
                last._version if isinstance(last, Tensor) else None)

        hooks = [
            module.register_forward_hook(
                lambda m, i, o, path=path: log(m, i, o, path))
            for path, module in self.model.named_modules() if path
        ]
        try:
            with eval_mode(self.model), torch.no_grad():
                if context is None:
                    self.model(x, None, 'tensor')
                else:
                    with context:
                        self.model(x, None, 'tensor')
        finally:
            for hook in hooks:
                hook.remove()
        return calls, versions

    def probe(self, x: Tensor, context=None) -> Probe:
        """Run the model's own forward on ``x`` (eval mode, no grad) with
        ``context`` (e.g. MMRazor recorders) active, and check that the
        chain of segments gives the same tensor at every boundary.

        Returns:
            Probe: The boundaries and module outputs of that forward.

        Raises:
            ValueError: If a segment does not reproduce the forward.
        """
        return self._verify(x, self._forward(x, context)[0])

    def _verify(self, x: Tensor, calls: list) -> Probe:
        positions = self._find(calls)
        boundaries = [last_output(calls[p][1]) for p in positions]
        with eval_mode(self.model), torch.no_grad():
            y = x
            for i, segment in enumerate(self._segments):
                y = segment(y)
                if not (isinstance(y, Tensor)
                        and isinstance(boundaries[i], Tensor)
                        and torch.equal(y, boundaries[i])):
                    raise ValueError(
                        f'cannot cut {self._name} into segments: the '
                        f'segment ending at {segment.end[0]!r} does not '
                        "give the tensor of the model's own forward there")
        return Probe(boundaries, calls, positions, x)

    def _find(self, calls: list) -> List[int]:
        """Position in ``calls`` of each segment's boundary."""
        positions = []
        seen: Dict[str, int] = {}
        for segment in self._segments:
            path, number = segment.end
            matches = [i for i, (p, _) in enumerate(calls) if p == path]
            if number is None:  # a described unit: its next unused call
                number = seen.get(path, 0)
                seen[path] = number + 1
            if number < 0:
                number = len(matches) - 1
            if not 0 <= number < len(matches):
                raise ValueError(
                    f'cannot cut {self._name} into segments: {path!r} is '
                    f'called {len(matches)} time(s) in the forward, the '
                    f'cut needs call {number + 1}')
            positions.append(matches[number])
        return positions

    @staticmethod
    def _names(probe: Probe) -> List[Tuple[str, ...]]:
        """Module paths whose output is each boundary: first those that
        return the tensor itself, then those whose tuple output ends with
        it, then views; each group outermost (fewest dots) and latest
        first. A module called more than once is named ``path[k]`` for its
        k-th call (from 0)."""
        counts: Dict[str, int] = {}
        labels = []
        for path, _ in probe.calls:
            labels.append((path, counts.get(path, 0)))
            counts[path] = labels[-1][1] + 1
        labels = [
            path if counts[path] == 1 else f'{path}[{k}]' for path, k in labels
        ]
        names = []
        for boundary in probe.boundaries:
            ranked = []
            for position, (path, out) in enumerate(probe.calls):
                if out is boundary:
                    kind = 0
                elif (isinstance(out, (tuple, list)) and len(out) > 0
                      and last_output(out) is boundary):
                    kind = 1
                elif same_tensor(out, boundary):
                    kind = 2
                else:
                    continue
                ranked.append(
                    (kind, path.count('.'), -position, labels[position]))
            names.append(tuple(dict.fromkeys(r[-1] for r in sorted(ranked))))
        return names

    @property
    def names(self) -> Tuple[str, ...]:
        """tuple[str]: Canonical name of every boundary, in order."""
        return tuple(a[0] for a in self.aliases)

    @staticmethod
    def shapes_of(probe: Probe) -> List[Tuple[int, ...]]:
        """Shape of every boundary in ``probe``, without the batch."""
        return [tuple(t.shape[1:]) for t in probe.boundaries]

    @property
    def logits_index(self) -> int:
        """int: The boundary of the logits (the last one)."""
        return len(self._segments) - 1

    def _call_numbers(self, probe: Probe) -> List[Tuple[str, int]]:
        """``(module path, call number)`` of each boundary's call: the
        segment's own end, or for a hand-described unit the number its call
        had in the dry run."""
        numbers = []
        for segment, position in zip(self._segments, probe.positions):
            path, number = segment.end
            if number is None:
                number = sum(p == path for p, _ in probe.calls[:position])
            numbers.append((path, number))
        return numbers

    def boundary_call(self, index: int) -> Tuple[str, int]:
        """``(module path, call number)`` of the module call whose output
        (its last element, for a tuple) is boundary ``index`` in the
        model's own forward: the number counts calls from 0, and -1 is the
        last call."""
        return self._calls[index]

    def match(self, tensor, probe: Probe) -> Optional[int]:
        """The boundary whose tensor ``tensor`` is (or views), or None."""
        if not isinstance(tensor, Tensor):
            return None
        for i, boundary in enumerate(probe.boundaries):
            if tensor is boundary:
                return i
        for i, boundary in enumerate(probe.boundaries):
            if same_tensor(tensor, boundary):
                return i
        return None

    def next_boundary(self,
                      tensor: Tensor,
                      probe: Probe,
                      source: str,
                      record_idx: int = 0,
                      is_input: bool = False) -> Optional[int]:
        """The first boundary at or after a tensor inside a unit.

        ``tensor`` is what a recorder of module ``source`` recorded at its
        ``record_idx``-th call in the forward of ``probe``: that call's
        output, or (``is_input``) one of its inputs, which the call consumes.
        The boundary is the first one whose call ends at or after that call,
        i.e. the end of the unit the tensor lies in.

        Returns:
            int or None: The boundary; None when no boundary follows, when
            ``source`` is not called that often, or for an input that is the
            batch itself (the image).
        """
        if is_input and probe.image is not None and (
                tensor is probe.image or same_tensor(tensor, probe.image)):
            return None
        calls = [
            i for i, (path, _) in enumerate(probe.calls) if path == source
        ]
        if not 0 <= record_idx < len(calls):
            return None
        where = calls[record_idx]
        after = [i for i, p in enumerate(probe.positions) if p >= where]
        return after[0] if after else None

    def nearest(self, tensor, probe: Probe) -> str:
        """The spots just before and after the call that produced
        ``tensor`` in the forward of ``probe``, as text."""
        where = next((i for i, (_, out) in enumerate(probe.calls)
                      if out is tensor or last_output(out) is tensor), None)
        if where is None:
            return 'valid spots: ' + ', '.join(map(repr, self.names))
        before = [i for i, p in enumerate(probe.positions) if p < where]
        after = [i for i, p in enumerate(probe.positions) if p > where]
        parts = []
        if before:
            parts.append(f'{self.names[before[-1]]!r} (before it)')
        if after:
            parts.append(f'{self.names[after[0]]!r} (after it)')
        return 'nearest valid spots: ' + ' and '.join(parts)

    def index(self, name: str) -> int:
        """The boundary named ``name`` (any of its aliases).

        Raises:
            ValueError: If ``name`` is not a boundary; lists valid spots.
        """
        if isinstance(name, str) and name in self._index:
            return self._index[name]
        valid = ', '.join(repr(p) for p in self.names)
        raise ValueError(
            f'{name!r} is not a spot of {self._name}: a spot is a segment '
            'boundary, the output of a module after which one tensor '
            f'carries the whole forward on. Valid spots: {valid}')

    def run(self,
            x: Tensor,
            start: Optional[int] = None,
            end: Optional[int] = None,
            detach_params: bool = False) -> Tensor:
        """Run the segments after boundary ``start`` up to boundary ``end``.

        Args:
            x (Tensor): The image if ``start`` is None, else the tensor at
                boundary ``start``.
            start (int, optional): Boundary to resume after. Defaults to
                None, from the image.
            end (int, optional): Last boundary to compute. Defaults to
                None, to the logits.
            detach_params (bool): Run every module with its parameters
                detached: gradients flow through the activations to ``x``
                but never into the weights. Buffers (BN running statistics)
                are used, and updated, as the modules' train/eval mode says.
                Defaults to False.

        Returns:
            Tensor: The tensor at boundary ``end``.
        """
        first = 0 if start is None else start + 1
        last = self.logits_index if end is None else end
        if first > last:
            return x
        if not detach_params:
            for segment in self._segments[first:last + 1]:
                x = segment(x)
            return x
        chain = self._chains.get((first, last))
        if chain is None:
            chain = self._chains[(first, last)] = _Chain(
                self._segments[first:last + 1])
        # one reparametrisation for the whole range, not one per segment;
        # buffers stay the modules' own, so BN uses (and in train mode
        # updates) its running statistics as usual
        params = {n: p.detach() for n, p in chain.params}
        return functional_call(chain, params, (x, )) if params else chain(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}: {len(self.names)} " \
            f"boundaries, {self.names[0]} ... {self.names[-1]})"
