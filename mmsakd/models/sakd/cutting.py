"""Cut an image classifier's backbone into units that run one at a time.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) routes every sample through a mix of teacher and student
segments, so both networks must run any contiguous range between two spots.

A backbone is cut automatically: ``torch.fx`` traces its own ``forward``
and its containers (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``),
keeping every other module as one call, and every module call after which a
single tensor carries everything the rest of the forward needs is a cut. A
backbone that cannot be traced can be described by hand with
:func:`register_segment_describer`. The executor
(:class:`~mmsakd.models.sakd.executor.SegmentExecutor`) chains the units
with the neck and the head and verifies them against the model's forward.
"""
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

from torch import Tensor, fx, nn

from .utils import eval_mode, last_output


class Unit(NamedTuple):
    """A described unit that is not a run of submodules: ``module`` runs
    on the previous boundary, and ``end`` is the path (relative to the
    backbone) of the module call whose output (its last element, for a
    tuple) is the unit's boundary in the backbone's own forward; ``''``
    names the backbone's own output."""
    module: nn.Module
    end: str


UnitNames = Union[str, Sequence[str], Unit]
Describer = Callable[[nn.Module], Sequence[UnitNames]]
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

_DESCRIBERS: Dict[type, Describer] = {}


def register_segment_describer(backbone_cls: type,
                               force: bool = False) -> Callable:
    """Register how a backbone class is cut into units, by hand.

    Backbones are cut automatically by tracing their forward; a describer
    is only needed for a backbone that ``torch.fx`` cannot trace. The
    decorated function takes the backbone and returns its units in forward
    order. A unit is a sequence of submodule names (relative to the
    backbone) that are called one after another, each on the previous one's
    output; a single name may be given as a plain string; a :class:`Unit`
    gives a module of its own (e.g. a transformer's token embedding: patch
    embedding, class token and position embedding). The units, run in
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


class Segment:
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
            return last_output(self.module((x, )))
        return self.module(x)


class _ChainTracer(fx.Tracer):
    """Traces a backbone's own forward and its containers; every other
    module is kept as one call (and one possible cut)."""

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        return not isinstance(module, CONTAINERS)


class Trace(NamedTuple):
    """A backbone's forward as a graph, and where it may be cut."""
    backbone: nn.Module
    nodes: List[fx.Node]
    cuts: List[fx.Node]  # the last one is the backbone's output
    ends: Dict[fx.Node, Tuple[str, int]]


def trace_backbone(backbone: nn.Module) -> Trace:
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
    result = last_output(output.args[0])
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
    return Trace(backbone, nodes, cuts, ends)


def traced_segments(trace: Trace) -> List[Segment]:
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
            Segment(fx.GraphModule(trace.backbone, sub), trace.ends[cut]))
        start = cut
    return segments


def described_segments(backbone: nn.Module,
                       describer: Describer) -> List[Segment]:
    segments = []
    for names in describer(backbone):
        if isinstance(names, Unit):
            end = (f'backbone.{names.end}', None) if names.end else \
                ('backbone', -1)
            segments.append(Segment(names.module, end))
            continue
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
            Segment(nn.Sequential(*modules), (f'backbone.{names[-1]}', None)))
    return segments
