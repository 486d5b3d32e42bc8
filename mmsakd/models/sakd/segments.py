"""Cut an image classifier into segments that can be run one range at a time.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) routes every sample through a mix of teacher and student
segments, so both networks must run any contiguous range between two spots.
An MMPretrain ``ImageClassifier`` (backbone -> neck -> head) is cut into a
chain of *segments*; the output of each segment is a *boundary*, a tensor
that the next segment takes as its only input, and a spot is a boundary.

The backbone is cut automatically: ``torch.fx`` traces its own ``forward``
and its containers (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``),
keeping every other module as one call, and every module call after which a
single tensor carries everything the rest of the forward needs is a cut.
The neck (run on the last backbone output) and the head (run to the logits)
are one segment each. A backbone that cannot be traced can be described by
hand with :func:`register_segment_describer`.

Every cut is verified by a dry run: the model's own forward and the chain of
segments must give exactly the same tensor at every boundary. The same dry
run names each boundary by the modules whose output it is: a recorder on
``backbone.layer4``, on the last activation of its last block, on ``neck`` or
``neck.gap`` reads the same tensor (or a view of it) and so the same spot.
"""
import copy
from contextlib import contextmanager
from typing import (Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import torch
from torch import Tensor, fx, nn
from torch.func import functional_call
from torch.fx.experimental.optimization import fuse

UnitNames = Union[str, Sequence[str]]
Describer = Callable[[nn.Module], Sequence[UnitNames]]
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

_DESCRIBERS: Dict[type, Describer] = {}


def train_mode_matters(module: nn.Module) -> bool:
    """Whether ``module`` is in train mode and that changes what a pass
    through it does: a BatchNorm layer (batch statistics, and its running
    statistics updated) or a dropout or drop-path layer (a random output).
    A pass through such a module can neither be reused nor replaced by an
    equivalent one."""
    return module.training and (isinstance(module,
                                           nn.modules.batchnorm._BatchNorm)
                                or 'Drop' in type(module).__name__)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode inside the block; restore every
    submodule's own train/eval flag afterwards, also on error."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def register_segment_describer(backbone_cls: type,
                               force: bool = False) -> Callable:
    """Register how a backbone class is cut into units, by hand.

    Backbones are cut automatically by tracing their forward; a describer
    is only needed for a backbone that ``torch.fx`` cannot trace. The
    decorated function takes the backbone and returns its units in forward
    order. A unit is a sequence of submodule names (relative to the
    backbone) that are called one after another, each on the previous one's
    output; a single name may be given as a plain string. The units, run in
    order, must give the backbone's last output (this is verified).

    Subclasses are served by the describer of their nearest registered base
    class, unless they override ``forward``.

    Args:
        backbone_cls (type): The backbone class.
        force (bool): Replace an existing describer. Defaults to False.

    Returns:
        Callable: The decorator, which returns the function unchanged.

    Example:
        >>> @register_segment_describer(MyBackbone)
        ... def describe_my_backbone(backbone):
        ...     return [('conv', 'bn', 'relu'), 'stage1', 'stage2']
    """
    if not isinstance(backbone_cls, type):
        raise TypeError('register_segment_describer expects a class, got '
                        f'{backbone_cls!r}')

    def register(fn: Describer) -> Describer:
        if backbone_cls in _DESCRIBERS and not force:
            raise KeyError(f'a segment describer for {backbone_cls.__name__} '
                           'is already registered; pass force=True to '
                           'replace it')
        _DESCRIBERS[backbone_cls] = fn
        return fn

    return register


def get_segment_describer(backbone: nn.Module) -> Optional[Describer]:
    """The registered describer of a backbone (through its class's MRO),
    or None when it is to be cut automatically."""
    mro = type(backbone).__mro__
    for depth, cls in enumerate(mro):
        if cls not in _DESCRIBERS:
            continue
        overriding = [c for c in mro[:depth] if 'forward' in vars(c)]
        if overriding:
            raise TypeError(
                f'{type(backbone).__name__} inherits the segment describer '
                f'of {cls.__name__} but {overriding[0].__name__} overrides '
                'forward, so the units may no longer match what the model '
                'runs; register a describer for it with '
                '`mmsakd.models.sakd.register_segment_describer('
                f'{type(backbone).__name__})`')
        return _DESCRIBERS[cls]
    return None


def _last(value):
    """The last element of a tuple/list output, else the value."""
    if isinstance(value, (tuple, list)) and len(value) > 0:
        return value[-1]
    return value


class _Segment:
    """One link of the chain: ``module`` run on the previous boundary.

    Args:
        module (nn.Module): What runs; for the backbone a ``GraphModule``
            that shares the backbone's submodules.
        end (tuple): ``(module path, call number)`` of the call whose
            output is the boundary, to find it in the model's own forward:
            the number counts from 0, -1 is the last call, and None (a
            described unit) the next call that ends no earlier unit.
        tuple_io (bool): The module takes a tuple of feature maps and
            returns one or a tuple (MMPretrain necks and heads); it runs on
            ``(x, )`` and its last output is the boundary.
    """

    def __init__(self,
                 module: nn.Module,
                 end: Tuple[str, Optional[int]],
                 tuple_io: bool = False):
        self.module = module
        self.end = end
        self.tuple_io = tuple_io

    def __call__(self, x: Tensor) -> Tensor:
        if self.tuple_io:
            return _last(self.module((x, )))
        return self.module(x)


class _Chain(nn.Module):
    """Consecutive segments as one module, so that one
    ``functional_call`` detaches the parameters of all of them. It only
    references the segments' modules (the executor keeps it outside any
    module tree)."""

    def __init__(self, segments: Sequence[_Segment]):
        super().__init__()
        self.segments = list(segments)
        self.links = nn.ModuleList(s.module for s in self.segments)
        self.params = list(self.named_parameters())

    def forward(self, x: Tensor) -> Tensor:
        for segment in self.segments:
            x = segment(x)
        return x


class _ChainTracer(fx.Tracer):
    """Traces a backbone's own forward and its containers; every other
    module is kept as one call (and one possible cut)."""

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        return not isinstance(module, CONTAINERS)


class _Trace(NamedTuple):
    """A backbone's forward as a graph, and where it may be cut."""
    backbone: nn.Module
    nodes: List[fx.Node]
    cuts: List[fx.Node]  # the last one is the backbone's output
    ends: Dict[fx.Node, Tuple[str, int]]


def _trace_backbone(backbone: nn.Module) -> _Trace:
    """Trace a backbone and find every module call after which one tensor
    carries the whole forward on (towards its last output)."""
    with eval_mode(backbone):
        # owned by a GraphModule, as dead-code elimination wants
        graph = fx.GraphModule(backbone, _ChainTracer().trace(backbone)).graph
    nodes = list(graph.nodes)
    calls: Dict[str, int] = {}
    ends = {}
    for node in nodes:
        if node.op == 'call_module':
            ends[node] = (f'backbone.{node.target}', calls.get(node.target, 0))
            calls[node.target] = ends[node][1] + 1
    output = next(n for n in nodes if n.op == 'output')
    result = _last(output.args[0])
    if not isinstance(result, fx.Node):
        raise TypeError('its forward does not return a tensor computed from '
                        'its input')
    output.args = (result, )
    graph.eliminate_dead_code()
    nodes = [n for n in graph.nodes if n.op != 'output']
    position = {n: i for i, n in enumerate(nodes)}
    if result not in ends:  # computed in the backbone's forward itself
        ends[result] = ('backbone', -1)

    cuts = []
    horizon = 0  # furthest position an earlier value is still needed at
    for i, node in enumerate(nodes):
        if node.op == 'call_module' and horizon <= i and node is not result:
            cuts.append(node)
        if node.op != 'get_attr':
            uses = [position[u] for u in node.users if u in position]
            horizon = max([horizon, i] + uses)
    cuts.append(result)
    return _Trace(backbone, nodes, cuts, ends)


def _traced_segments(trace: _Trace) -> List[_Segment]:
    """One ``GraphModule`` (sharing the backbone's modules) per cut."""
    position = {n: i for i, n in enumerate(trace.nodes)}
    segments = []
    start = trace.nodes[0]  # the placeholder
    for cut in trace.cuts:
        sub = fx.Graph()
        env = {start: sub.placeholder('x')}
        for node in trace.nodes[position[start] + 1:position[cut] + 1]:
            for arg in node.all_input_nodes:
                if arg not in env:  # parameters used in the forward itself
                    env[arg] = sub.node_copy(arg, env.__getitem__)
            env[node] = sub.node_copy(node, env.__getitem__)
        sub.output(env[cut])
        segments.append(
            _Segment(fx.GraphModule(trace.backbone, sub), trace.ends[cut]))
        start = cut
    return segments


def _described_segments(backbone: nn.Module,
                        describer: Describer) -> List[_Segment]:
    segments = []
    for names in describer(backbone):
        names = (names, ) if isinstance(names, str) else tuple(names)
        if not names:
            raise ValueError('the segment describer returned an empty unit')
        try:
            modules = [backbone.get_submodule(n) for n in names]
        except AttributeError as err:
            raise ValueError('the segment describer names a missing '
                             f'submodule: {err}') from err
        # None: the next call of the unit's last module that ends no
        # earlier unit (verified against the forward)
        segments.append(
            _Segment(nn.Sequential(*modules), (f'backbone.{names[-1]}', None)))
    return segments


class Probe(NamedTuple):
    """What one dry run of the model's own forward saw.

    Attributes:
        boundaries (list[Tensor]): The tensor at every boundary.
        calls (list[tuple[str, Any]]): ``(module path, output)`` of every
            module call, in the order the calls ended.
        positions (list[int]): Index in ``calls`` of each boundary's call.
    """
    boundaries: List[Tensor]
    calls: List[Tuple[str, object]]
    positions: List[int]


def same_tensor(a, b: Tensor) -> bool:
    """``a`` is ``b`` or a view of the same elements (e.g. a reshape)."""
    if a is b:
        return True
    return (isinstance(a, Tensor) and a.numel() == b.numel() and
            a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            and a.storage_offset() == b.storage_offset())


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
        context (optional): A context manager active during that dry run's
            forward, e.g. the MMRazor recorders whose records are to be
            resolved to boundaries (:attr:`first_probe`).

    Raises:
        TypeError: If the model cannot be cut; the message says why and how
            to register a describer.
        ValueError: If the chain does not reproduce the model's forward.
    """

    def __init__(self,
                 model: nn.Module,
                 input_shape: Sequence[int],
                 context=None):
        self.model = model
        self._name = self._model_name(model)
        self._chains: Dict[Tuple[int, int], _Chain] = {}
        self._folded: Dict[Tuple[int, int], tuple] = {}
        x = self.dry_input(input_shape)
        calls = self._cut(model, x, context)
        #: The :class:`Probe` of the dry run that verified the cuts (with
        #: ``context`` active); its owner may drop it once read.
        self.first_probe: Optional[Probe] = self._verify(x, calls)
        self.aliases = self._names(self.first_probe)
        self._index = {}
        for i, names in enumerate(self.aliases):
            for name in names:
                self._index.setdefault(name, i)

    @staticmethod
    def _model_name(model: nn.Module) -> str:
        backbone = getattr(model, 'backbone', None)
        return (f'{type(model).__name__}({type(backbone).__name__})'
                if backbone is not None else type(model).__name__)

    def _cut(self, model: nn.Module, x: Tensor, context=None) -> list:
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
            tail.append(_Segment(neck, ('neck', 0), tuple_io=True))
        tail.append(_Segment(head, ('head', 0), tuple_io=True))

        describer = get_segment_describer(backbone)
        try:
            if describer is not None:
                self._segments = _described_segments(backbone,
                                                     describer) + tail
            else:
                trace = _trace_backbone(backbone)
                self._segments = _traced_segments(trace) + tail
        except Exception as err:
            how = ('fix the describer' if describer is not None else
                   'register a describer with `@mmsakd.models.sakd.'
                   f'register_segment_describer({type(backbone).__name__})` '
                   'on a function that returns its units (lists of '
                   'submodule names run one after another) in forward order')
            raise TypeError(
                f'cannot cut the backbone of {self._name} into segments '
                f'that SAKD can run one at a time ({type(err).__name__}: '
                f'{err}); {how}. Transformers and multi-branch networks '
                '(ViT, Swin, HRNet) are not supported.') from err
        calls, versions = self._forward(x, context)
        if describer is None:
            # a cut whose tensor the forward later changes in place (e.g.
            # a BN output fed to an in-place ReLU) is not a boundary
            positions = self._find(calls)[:len(trace.cuts) - 1]
            mutated = {
                i
                for i, p in enumerate(positions)
                if _last(calls[p][1])._version != versions[p]
            }
            if mutated:
                trace.cuts[:] = [
                    c for i, c in enumerate(trace.cuts) if i not in mutated
                ]
                self._segments = _traced_segments(trace) + tail
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
            last = _last(output)
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
        boundaries = [_last(calls[p][1]) for p in positions]
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
        return Probe(boundaries, calls, positions)

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
                      and _last(out) is boundary):
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

    def boundary_call(self, index: int) -> Tuple[str, Optional[int]]:
        """``(module path, call number)`` of the module call whose output
        (its last element, for a tuple) is boundary ``index`` in the
        model's own forward: the number counts calls from 0, -1 is the
        last call, and None the next call that ends no earlier unit (a
        hand-described unit)."""
        return self._segments[index].end

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

    def nearest(self, tensor, probe: Probe) -> str:
        """The spots just before and after the call that produced
        ``tensor`` in the forward of ``probe``, as text."""
        where = next((i for i, (_, out) in enumerate(probe.calls)
                      if out is tensor or _last(out) is tensor), None)
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
            detach_params: bool = False,
            fold_bn: bool = False) -> Tensor:
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
            fold_bn (bool): Like ``detach_params``, but run a copy of the
                range whose eval-mode BatchNorm layers are folded into the
                convolutions before them (``torch.fx``'s ``fuse``): fewer
                operations, values equal up to float rounding. The copy is
                made once and again whenever a parameter or buffer of the
                range changes (a loaded checkpoint, a trained network). A
                range with a BatchNorm or dropout layer in train mode runs
                unfolded, as ``detach_params``. Defaults to False.

        Returns:
            Tensor: The tensor at boundary ``end``.
        """
        first = 0 if start is None else start + 1
        last = self.logits_index if end is None else end
        if first > last:
            return x
        if fold_bn:
            folded = self._folded_chain(first, last)
            if folded is not None:
                return folded(x)
            detach_params = True
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

    def _folded_chain(self, first: int, last: int) -> Optional[nn.Module]:
        """The segments ``first`` .. ``last`` with BN folded into their
        convolutions (frozen copies), or None when a BN or dropout layer of
        the range is in train mode. Cached; rebuilt when a tensor of the
        range changes (its version counter moves on any in-place write)."""
        segments = self._segments[first:last + 1]
        modules = [m for s in segments for m in s.module.modules()]
        # (MMRazor's frozen teacher keeps only its BN layers in eval mode)
        if any(map(train_mode_matters, modules)):
            return None
        tensors = {
            id(t): t
            for m in modules
            for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))
        }
        key = tuple(sorted((i, t._version) for i, t in tensors.items()))
        cached = self._folded.get((first, last))
        if cached is not None and cached[0] == key:
            return cached[1]
        # the whole range at once: a convolution and its BN may sit in two
        # segments (a cut between them)
        chain = copy.deepcopy(_Chain(segments)).eval()
        try:
            chain = fuse(chain, inplace=True)
        except Exception:  # not traceable as a whole: segment by segment
            for segment in chain.segments:
                try:
                    segment.module = fuse(segment.module, inplace=True)
                except Exception:  # not traceable: run it as it is
                    pass
        chain.requires_grad_(False)
        self._folded[(first, last)] = (key, chain)
        return chain

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}: {len(self.names)} " \
            f"boundaries, {self.names[0]} ... {self.names[-1]})"
