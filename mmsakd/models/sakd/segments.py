"""Cut an image classifier into segments that can be run one range at a time.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) routes every sample through a mix of teacher and student
segments, so both networks must run any contiguous range between two spots.
An MMPretrain ``ImageClassifier`` (backbone -> neck -> head) is described
here as an ordered chain of *units*, each addressed by a module path that an
MMRazor recorder on the same path would read; a spot is a unit boundary.

Backbones are described by small functions (*describers*), looked up through
the backbone class's MRO, so that other backbones can be added with
:func:`register_segment_describer`.
"""
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones import MobileNetV2, ResNet, ResNet_CIFAR
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.models.necks import (GeneralizedMeanPooling,
                                     GlobalAveragePooling)
from mmrazor.models.architectures.backbones import WideResNet
from torch import Tensor, nn
from torch.func import functional_call

from ..backbones.staged import StagedBackboneMixin

UnitNames = Union[str, Sequence[str]]
Describer = Callable[[nn.Module], Sequence[UnitNames]]

# necks that act on every backbone output on its own, so running them on the
# last output alone gives what the head sees
PER_OUTPUT_NECKS = (GlobalAveragePooling, GeneralizedMeanPooling)
LOGITS_PATH = 'head.fc'
LOGITS_ALIASES = ('head', )

_DESCRIBERS: Dict[type, Describer] = {}


def register_segment_describer(backbone_cls: type,
                               force: bool = False) -> Callable:
    """Register how a backbone class is cut into units.

    The decorated function takes the backbone and returns its units in
    forward order. A unit is a sequence of submodule names (relative to the
    backbone) that are called one after another, each on the previous one's
    output; a single name may be given as a plain string. The unit is
    addressed by its *last* module, ``backbone.<last name>``, because a
    recorder on that module records the unit's output. The function must
    raise ``ValueError`` where the backbone's configuration makes the
    classifier use anything but the last unit's output.

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


def get_segment_describer(backbone: nn.Module) -> Describer:
    """The describer of a backbone, found through its class's MRO."""
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
    supported = ', '.join(sorted(c.__name__ for c in _DESCRIBERS))
    raise TypeError(
        f'no segment describer for backbone {type(backbone).__name__}: '
        'SAKD must know how to cut it into units run in order. Supported: '
        f'{supported}. Add one with `@mmsakd.models.sakd.'
        f'register_segment_describer({type(backbone).__name__})` on a '
        'function that returns the units (lists of submodule names) in '
        'forward order')


def _check_last_output(backbone: nn.Module, out_indices: Sequence[int],
                       stages: Sequence[str]) -> None:
    # the classifier reads only the last backbone output: it must be the last
    # stage, otherwise cutting and re-running the chain changes the logits
    if len(stages) - 1 not in tuple(out_indices):
        raise ValueError(
            f'{type(backbone).__name__}: the classifier uses the last of '
            f'out_indices={tuple(out_indices)}, which must be the last '
            f'stage (index {len(stages) - 1}, {stages[-1]!r}) for the '
            'network to be cut into segments')


@register_segment_describer(StagedBackboneMixin)
def describe_staged(backbone: nn.Module) -> List[UnitNames]:
    """mmsakd's CIFAR zoo: one unit per name in ``stage_names``."""
    _check_last_output(backbone, backbone.out_indices, backbone.stage_names)
    return list(backbone.stage_names)


@register_segment_describer(ResNet)
def describe_resnet(backbone: nn.Module) -> List[UnitNames]:
    """MMPretrain ``ResNet`` and its variants.

    The stem is one unit: ``stem`` with ``deep_stem``, else ``conv1``,
    ``norm1`` and ``relu``, addressed as ``backbone.relu``. Then
    ``maxpool`` and the residual layers.
    """
    _check_last_output(backbone, backbone.out_indices, backbone.res_layers)
    stem = (('stem', ) if backbone.deep_stem else
            ('conv1', backbone.norm1_name, 'relu'))
    return [stem, 'maxpool', *backbone.res_layers]


@register_segment_describer(ResNet_CIFAR)
def describe_resnet_cifar(backbone: nn.Module) -> List[UnitNames]:
    """MMPretrain ``ResNet_CIFAR``: stem unit ``backbone.relu``, layers."""
    _check_last_output(backbone, backbone.out_indices, backbone.res_layers)
    return [('conv1', backbone.norm1_name, 'relu'), *backbone.res_layers]


@register_segment_describer(MobileNetV2)
def describe_mobilenet_v2(backbone: nn.Module) -> List[UnitNames]:
    """MMPretrain ``MobileNetV2``: ``conv1``, ``layer1..7``, ``conv2``."""
    _check_last_output(backbone, backbone.out_indices, backbone.layers)
    return ['conv1', *backbone.layers]


@register_segment_describer(WideResNet)
def describe_mmrazor_wrn(backbone: nn.Module) -> List[UnitNames]:
    """MMRazor ``WideResNet``: ``conv1``, the layers, then the final
    BN-ReLU as one unit addressed as ``backbone.relu``."""
    return ['conv1', *backbone.res_layers, (backbone.norm1_name, 'relu')]


def _call(module: nn.Module, inputs, detach_params: bool):
    if detach_params:
        params = {n: p.detach() for n, p in module.named_parameters()}
        if params:
            # buffers stay the module's own, so BN uses (and in train mode
            # updates) its running statistics as usual
            return functional_call(module, params, (inputs, ))
    return module(inputs)


class _Unit:
    """A run of modules called in order, addressed by ``path``."""

    def __init__(self,
                 path: str,
                 modules: Sequence[nn.Module],
                 module_paths: Sequence[str],
                 wrap_tuple: bool = False):
        self.path = path
        self.modules = tuple(modules)
        self.module_paths = tuple(module_paths)
        self.wrap_tuple = wrap_tuple

    def __call__(self, x: Tensor, detach_params: bool = False) -> Tensor:
        for module in self.modules:
            if self.wrap_tuple:
                # MMPretrain necks take and return a tuple of stage outputs
                x = _call(module, (x, ), detach_params)
                x = x[-1] if isinstance(x, tuple) else x
            else:
                x = _call(module, x, detach_params)
        return x

    def contains(self, path: str) -> bool:
        return any(path == p or path.startswith(p + '.')
                   for p in self.module_paths)


class SegmentExecutor:
    """Run an image classifier as a chain of units between spots.

    The units, from the image to the logits, are the backbone's (from its
    describer, e.g. ``backbone.stem``, ``backbone.layer1`` ... for mmsakd's
    CIFAR zoo), ``neck`` (run on the last backbone output alone, tensor in
    and out) and ``head.fc`` (``LinearClsHead``'s ``pre_logits`` is the
    identity); ``head`` is accepted as an alias of the logits. Running all
    units in order is ``model(x, mode='tensor')`` exactly.

    The model is not copied: the executor runs the model's own modules.

    Args:
        model (nn.Module): An MMPretrain ``ImageClassifier`` or a module
            with the same ``backbone``, ``neck`` (optional, a per-output
            pooling neck) and ``head`` (``LinearClsHead``) attributes.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self._units = self._describe(model)
        self._index = {u.path: i for i, u in enumerate(self._units)}

    @staticmethod
    def _describe(model: nn.Module) -> List[_Unit]:
        backbone = getattr(model, 'backbone', None)
        head = getattr(model, 'head', None)
        if not isinstance(backbone, nn.Module) or not isinstance(
                head, nn.Module):
            raise TypeError(
                f'cannot cut {type(model).__name__} into segments: SAKD '
                'needs an ImageClassifier-like chain with `backbone`, '
                'optional `neck` and `head` modules (MMPretrain '
                "ImageClassifier with mode='tensor' giving the logits)")
        name = f'{type(model).__name__}({type(backbone).__name__})'
        units = []
        for names in get_segment_describer(backbone)(backbone):
            names = (names, ) if isinstance(names, str) else tuple(names)
            if not names:
                raise ValueError(f'{name}: the segment describer returned '
                                 'an empty unit')
            try:
                modules = [backbone.get_submodule(n) for n in names]
            except AttributeError as err:
                raise ValueError(f'{name}: the segment describer names a '
                                 f'missing submodule: {err}') from err
            paths = [f'backbone.{n}' for n in names]
            units.append(_Unit(paths[-1], modules, paths))

        neck = getattr(model, 'neck', None)
        if neck is not None:
            if not isinstance(neck, PER_OUTPUT_NECKS):
                necks = ', '.join(c.__name__ for c in PER_OUTPUT_NECKS)
                raise TypeError(
                    f'{name}: neck {type(neck).__name__} is not supported; '
                    'segments need a neck that acts on the last backbone '
                    f'output alone: {necks}')
            units.append(_Unit('neck', [neck], ['neck'], wrap_tuple=True))

        if (not isinstance(head, LinearClsHead)
                or type(head).pre_logits is not LinearClsHead.pre_logits
                or type(head).forward is not LinearClsHead.forward):
            raise TypeError(
                f'{name}: head {type(head).__name__} is not supported; '
                'segments need a LinearClsHead (logits = head.fc of the '
                'last neck output)')
        units.append(_Unit(LOGITS_PATH, [head.fc], [LOGITS_PATH]))
        return units

    @property
    def paths(self) -> Tuple[str, ...]:
        """tuple[str]: Unit paths (valid spots) in execution order."""
        return tuple(u.path for u in self._units)

    def index(self, path: str) -> int:
        """Position of a spot in :attr:`paths`.

        Raises:
            ValueError: If ``path`` is not a unit boundary; the message
                says which unit it lies in, if any, and lists the valid
                spots.
        """
        if path in LOGITS_ALIASES:
            path = LOGITS_PATH
        if isinstance(path, str) and path in self._index:
            return self._index[path]
        model = (f'{type(self.model).__name__}'
                 f'({type(self.model.backbone).__name__})')
        valid = ', '.join(repr(p) for p in self.paths)
        owner = None
        if isinstance(path, str) and self._is_module(path):
            owner = next((u for u in self._units if u.contains(path)), None)
        if owner is not None:
            raise ValueError(
                f'spot {path!r} of {model} is not a segment boundary: it '
                f'lies inside the unit {owner.path!r}, which runs as a '
                'whole. A spot must be a segment boundary so that the '
                'network can be cut and resumed there; record the unit '
                f'output {owner.path!r} instead. Valid spots: {valid}')
        raise ValueError(
            f'unknown spot {path!r} of {model}: spots must be segment '
            f'boundaries, the paths of whole units. Valid spots: {valid} '
            f"(and 'head' for {LOGITS_PATH!r})")

    def _is_module(self, path: str) -> bool:
        try:
            self.model.get_submodule(path)
        except AttributeError:
            return False
        return True

    def run(self,
            x: Tensor,
            start: Optional[str] = None,
            end: Optional[str] = None,
            detach_params: bool = False) -> Tensor:
        """Run the units after ``start`` up to and including ``end``.

        Args:
            x (Tensor): The image if ``start`` is None, else the output of
                the unit ``start``.
            start (str, optional): Spot to resume after. Defaults to None,
                from the image.
            end (str, optional): Last unit to run. Defaults to None, to the
                logits.
            detach_params (bool): Run every module with its parameters
                detached: gradients flow through the activations to ``x``
                but never into the weights. Buffers (BN running statistics)
                are used, and updated, as the modules' train/eval mode says.
                Defaults to False.

        Returns:
            Tensor: The output of ``end``; ``x`` itself when ``start`` and
            ``end`` are the same spot.
        """
        first = 0 if start is None else self.index(start) + 1
        last = len(self._units) - 1 if end is None else self.index(end)
        if first > last + 1:
            raise ValueError(f'start spot {start!r} comes after end spot '
                             f'{end!r}; the order is {self.paths}')
        for unit in self._units[first:last + 1]:
            x = unit(x, detach_params)
        return x

    def shapes(
        self, input_shape: Sequence[int] = (3, 32, 32)
    ) -> 'OrderedDict[str, Tuple[int, ...]]':
        """Output shape of every unit, without the batch dimension.

        A dry run on one zero image in eval mode under ``no_grad``, so that
        no BN statistics change; every module's train/eval flag is restored.

        Args:
            input_shape (Sequence[int]): Input shape without batch.
                Defaults to ``(3, 32, 32)``.

        Returns:
            OrderedDict: Unit path -> output shape.
        """
        modes = [(m, m.training) for m in self.model.modules()]
        param = next(self.model.parameters(), None)
        x = torch.zeros((1, *input_shape),
                        device=None if param is None else param.device,
                        dtype=None if param is None else param.dtype)
        shapes = OrderedDict()
        try:
            self.model.eval()
            with torch.no_grad():
                for unit in self._units:
                    x = unit(x)
                    shapes[unit.path] = tuple(x.shape[1:])
        finally:
            for module, mode in modes:
                module.training = mode
        return shapes

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({type(self.model).__name__}: '
                f"{' -> '.join(self.paths)})")
