"""Convert a CIFAR KD benchmark checkpoint into an mmsakd classifier one.

The CIFAR knowledge-distillation benchmark (RepDistiller, CRD, Tian et al.,
ICLR 2020) and the SAKD code (Song et al., IEEE TIP 2022) save teachers as
``torch.save({'model': state_dict, 'epoch': ..., ...})`` with the parameter
names of their own model classes. This tool renames those tensors to the
MMPretrain ``ImageClassifier`` that mmsakd builds from
``configs/_base_/models/cifar/`` (a ``mmsakd.CIFAR*`` backbone, a
``GlobalAveragePooling`` neck and a ``LinearClsHead``) and writes an
MMEngine checkpoint ``{'state_dict': ..., 'meta': ...}`` that
``mmengine.runner.load_checkpoint(model, path, strict=True)`` and MMRazor's
``teacher_ckpt`` load.

Input: the file may hold the state dict under ``'model'`` (RepDistiller,
SAKD; every other entry such as ``'epoch'``, ``'acc'``, ``'optimizer'`` or
``'policy'`` is left out), under ``'state_dict'``, or be a bare state dict.
A ``module.`` prefix (``DataParallel``) is stripped. The file is read with
``torch.load(..., weights_only=True)``, so a file that would run code while
being unpickled is refused, and a corrupt one is called corrupt. An output
path that names the input file (under any spelling) is refused.

Architectures (``--arch``, the keys of RepDistiller's ``model_dict`` and
SAKD's ``MODEL_DICT``; ``wrn_28_10`` and ResNet18/34/101/152 are SAKD's):

==========================================  ==============================
``--arch``                                  mmsakd backbone
==========================================  ==============================
``resnet8/14/20/32/44/56/110``              ``CIFARResNet`` (x1)
``resnet8x4``, ``resnet32x4``               ``CIFARResNet`` (``arch='x4'``)
``wrn_16_1/16_2/40_1/40_2``, ``wrn_28_10``  ``CIFARWideResNet``
``vgg8/11/13/16/19`` (the ``*_bn`` models)  ``CIFARVGG``
``mobile_half`` (RepDistiller, width 0.5)   ``CIFARMobileNetV2(0.5)``
``MobileNetV2`` (SAKD, width 1.0)           ``CIFARMobileNetV2(1.0)``
``ShuffleV1`` (SAKD: ``ShuffleNetV1``)      ``CIFARShuffleNetV1(groups=3)``
``ShuffleV2`` (SAKD: ``ShuffleNetV2``)      ``CIFARShuffleNetV2(1.0)``
``ResNet18/34/50/101/152``                  ``CIFARResNetV2``
==========================================  ==============================

Key rules: every family has an ordered list of rules, each a regular
expression that must match the whole module path of a key (the key without
its last component, e.g. ``layer1.0.bn1`` of ``layer1.0.bn1.running_var``)
and the module path it becomes; the last component is kept. The first
matching rule wins. In short:

* resnet: ``conv1``/``bn1`` -> ``backbone.stem.0``/``.1``;
  ``layerI.J.*`` (``conv1/2``, ``bn1/2``, ``downsample.0/1``) ->
  ``backbone.layerI.J.*``; ``fc`` -> ``head.fc``.
* ResNet18..152: the same stem; ``layerI.J.shortcut.K`` ->
  ``backbone.layerI.J.downsample.K``; other ``layerI.J.*`` kept under
  ``backbone.``; ``linear`` -> ``head.fc``.
* wrn: ``conv1`` -> ``backbone.stem``; ``blockI.layer.J.convShortcut`` ->
  ``backbone.layerI.J.shortcut``; ``blockI.layer.J.(bn|conv)K`` ->
  ``backbone.layerI.J.(bn|conv)K``; ``bn1`` -> ``backbone.final_norm.0``;
  ``fc`` -> ``head.fc``.
* vgg: ``block0.K`` -> ``backbone.stem.K``; ``blockI.K`` ->
  ``backbone.layerI.(K + 1)`` (our stages start with their max pooling);
  ``classifier`` -> ``head.fc``.
* mobilenetv2: ``conv1.K`` -> ``backbone.stem.K``; ``blocks.G.J.conv.K`` ->
  ``backbone.layerS.(J + offset).conv.K``, the seven block groups going to
  the four stages as 0, 1 -> layer1; 2 -> layer2; 3, 4 -> layer3;
  5, 6 -> layer4; ``conv2.K`` -> ``backbone.conv2.K``; ``classifier.0`` ->
  ``head.fc``.
* ShuffleV1: ``conv1``/``bn1`` -> ``backbone.stem.0``/``.1``;
  ``layerI.J.(conv|bn)K`` kept under ``backbone.``; ``linear`` ->
  ``head.fc``.
* ShuffleV2: ``conv1``/``bn1`` -> ``backbone.stem.0``/``.1``; down unit
  ``layerI.0.(conv|bn)K`` -> ``backbone.layerI.0.{left.0, left.1, right.0,
  right.1, right.2}[K - 1].(0|1)``; split units ``layerI.J.(conv|bn)K`` ->
  ``backbone.layerI.J.branch.(K - 1).(0|1)`` (conv 0, BN 1);
  ``conv2``/``bn2`` -> ``backbone.conv2.0``/``.1``; ``linear`` ->
  ``head.fc``.

The conversion is checked for completeness: every source key must match a
rule, no two keys may land on the same name, and the result must have
exactly the keys and shapes of the classifier built for ``--arch`` (the
class count is read from the classifier weight). Otherwise nothing is
written and the error lists the unmapped, missing, unexpected and
mismatched keys, and the ``--arch`` the checkpoint does convert as, if
any. The only key ever added is a BN's ``num_batches_tracked`` (set to 0)
when the checkpoint has none at all, as files written before PyTorch 0.4.1
do; it does not take part in an eval-mode forward.

Example::

    python tools/model_converters/repdistiller2mmsakd.py \\
        save/models/resnet56_vanilla/ckpt_epoch_240.pth \\
        checkpoints/resnet56_cifar100.pth --arch resnet56
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from mmengine.registry import DefaultScope
from mmengine.runner import checkpoint as mmengine_checkpoint
from torch import Tensor, nn

import mmsakd  # noqa: F401  (applies the compatibility layer)
from mmsakd.compat import CheckpointLoadError as LoadError
from mmsakd.compat.checkpoint import load_weights_only
from mmsakd.registry import MODELS
from mmsakd.utils import same_file

Rule = Tuple[str, Union[str, Callable[[re.Match], str]]]

RESNET_RULES: List[Rule] = [
    (r'conv1', 'backbone.stem.0'),
    (r'bn1', 'backbone.stem.1'),
    (r'(layer[1-3]\.\d+\.(?:conv[12]|bn[12]|downsample\.[01]))',
     r'backbone.\1'),
    (r'fc', 'head.fc'),
]

RESNETV2_RULES: List[Rule] = [
    (r'conv1', 'backbone.stem.0'),
    (r'bn1', 'backbone.stem.1'),
    (r'(layer[1-4]\.\d+)\.shortcut\.([01])', r'backbone.\1.downsample.\2'),
    (r'(layer[1-4]\.\d+\.(?:conv|bn)[1-3])', r'backbone.\1'),
    (r'linear', 'head.fc'),
]

WRN_RULES: List[Rule] = [
    (r'conv1', 'backbone.stem'),
    (r'block([1-3])\.layer\.(\d+)\.convShortcut',
     r'backbone.layer\1.\2.shortcut'),
    (r'block([1-3])\.layer\.(\d+)\.((?:bn|conv)[12])',
     r'backbone.layer\1.\2.\3'),
    (r'bn1', 'backbone.final_norm.0'),
    (r'fc', 'head.fc'),
]

VGG_RULES: List[Rule] = [
    (r'block0\.(\d+)', r'backbone.stem.\1'),
    # each of our later stages holds the max pooling in front of its convs
    (r'block([1-4])\.(\d+)', lambda m: f'backbone.layer{m[1]}.{int(m[2]) + 1}'
     ),
    (r'classifier', 'head.fc'),
]

# The reference's seven groups of inverted residual blocks (1, 2, 3, 4, 3,
# 3 and 1 blocks) fall into our four stages at its feature boundaries:
# group -> (stage, index of its first block in that stage).
MOBILENETV2_GROUPS = {
    0: (1, 0),
    1: (1, 1),
    2: (2, 0),
    3: (3, 0),
    4: (3, 4),
    5: (4, 0),
    6: (4, 3)
}


def _mobilenetv2_block(m: re.Match) -> str:
    stage, offset = MOBILENETV2_GROUPS[int(m[1])]
    return f'backbone.layer{stage}.{int(m[2]) + offset}.conv.{m[3]}'


MOBILENETV2_RULES: List[Rule] = [
    (r'conv1\.([01])', r'backbone.stem.\1'),
    (r'blocks\.([0-6])\.(\d+)\.conv\.([0-7])', _mobilenetv2_block),
    (r'conv2\.([01])', r'backbone.conv2.\1'),
    (r'classifier\.0', 'head.fc'),
]

SHUFFLENETV1_RULES: List[Rule] = [
    (r'conv1', 'backbone.stem.0'),
    (r'bn1', 'backbone.stem.1'),
    (r'(layer[1-3]\.\d+\.(?:conv|bn)[1-3])', r'backbone.\1'),
    (r'linear', 'head.fc'),
]

# the five conv-BN pairs of the reference's down unit, in order
SHUFFLENETV2_DOWN = ('left.0', 'left.1', 'right.0', 'right.1', 'right.2')


def _conv_or_bn(kind: str) -> str:
    return '0' if kind == 'conv' else '1'


def _shufflenetv2_down(m: re.Match) -> str:
    branch = SHUFFLENETV2_DOWN[int(m[3]) - 1]
    return f'backbone.{m[1]}.0.{branch}.{_conv_or_bn(m[2])}'


def _shufflenetv2_split(m: re.Match) -> str:
    return (f'backbone.{m[1]}.{m[2]}.branch.{int(m[4]) - 1}.'
            f'{_conv_or_bn(m[3])}')


SHUFFLENETV2_RULES: List[Rule] = [
    (r'conv1', 'backbone.stem.0'),
    (r'bn1', 'backbone.stem.1'),
    (r'(layer[1-3])\.0\.(conv|bn)([1-5])', _shufflenetv2_down),
    (r'(layer[1-3])\.([1-9]\d*)\.(conv|bn)([1-3])', _shufflenetv2_split),
    (r'conv2', 'backbone.conv2.0'),
    (r'bn2', 'backbone.conv2.1'),
    (r'linear', 'head.fc'),
]

FAMILY_RULES: Dict[str, List[Rule]] = {
    'resnet': RESNET_RULES,
    'resnetv2': RESNETV2_RULES,
    'wrn': WRN_RULES,
    'vgg': VGG_RULES,
    'mobilenetv2': MOBILENETV2_RULES,
    'shufflenetv1': SHUFFLENETV1_RULES,
    'shufflenetv2': SHUFFLENETV2_RULES,
}


def _arch_table() -> 'OrderedDict[str, Tuple[str, dict, int]]':
    """``--arch`` -> (family, backbone config, head input channels)."""
    archs = OrderedDict()
    for depth in (8, 14, 20, 32, 44, 56, 110):
        archs[f'resnet{depth}'] = ('resnet',
                                   dict(
                                       type='mmsakd.CIFARResNet',
                                       depth=depth), 64)
    for depth in (8, 32):
        archs[f'resnet{depth}x4'] = ('resnet',
                                     dict(
                                         type='mmsakd.CIFARResNet',
                                         depth=depth,
                                         arch='x4'), 256)
    for depth, widen in ((16, 1), (16, 2), (40, 1), (40, 2), (28, 10)):
        archs[f'wrn_{depth}_{widen}'] = ('wrn',
                                         dict(
                                             type='mmsakd.CIFARWideResNet',
                                             depth=depth,
                                             widen_factor=widen), 64 * widen)
    for depth in (8, 11, 13, 16, 19):
        archs[f'vgg{depth}'] = ('vgg',
                                dict(type='mmsakd.CIFARVGG', depth=depth), 512)
    for name, width in (('mobile_half', 0.5), ('MobileNetV2', 1.0)):
        archs[name] = ('mobilenetv2',
                       dict(
                           type='mmsakd.CIFARMobileNetV2',
                           widen_factor=width), 1280)
    archs['ShuffleV1'] = ('shufflenetv1',
                          dict(type='mmsakd.CIFARShuffleNetV1', groups=3), 960)
    archs['ShuffleV2'] = ('shufflenetv2',
                          dict(
                              type='mmsakd.CIFARShuffleNetV2',
                              widen_factor=1.0), 1024)
    for depth in (18, 34, 50, 101, 152):
        archs[f'ResNet{depth}'] = ('resnetv2',
                                   dict(
                                       type='mmsakd.CIFARResNetV2',
                                       depth=depth),
                                   512 if depth < 50 else 2048)
    return archs


ARCHS = _arch_table()
# SAKD's names of the same models
ALIASES = {'ShuffleNetV1': 'ShuffleV1', 'ShuffleNetV2': 'ShuffleV2'}
ARCH_CHOICES = tuple(ARCHS) + tuple(ALIASES)

# how many keys an error message lists per category
SHOW = 8


class ConversionError(ValueError):
    """The checkpoint does not convert into the model of the given arch."""


class CheckpointLoadError(RuntimeError):
    """The source file cannot be read as a plain-tensor checkpoint."""


def resolve_arch(arch: str) -> str:
    """The canonical ``--arch`` name (SAKD's aliases resolved)."""
    arch = ALIASES.get(arch, arch)
    if arch not in ARCHS:
        raise ConversionError(f'unknown --arch {arch!r}; supported: '
                              f'{", ".join(ARCH_CHOICES)}')
    return arch


def model_config(arch: str, num_classes: int = 100) -> dict:
    """The ``ImageClassifier`` config of ``arch`` (as the configs build it).

    Args:
        arch (str): An ``--arch`` name.
        num_classes (int): Classes of the linear head. Defaults to 100.

    Returns:
        dict: The model config; its types name their scopes.
    """
    _, backbone, in_channels = ARCHS[resolve_arch(arch)]
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(backbone),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=in_channels))


def build_model(arch: str,
                num_classes: int = 100,
                device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """Build our classifier of ``arch`` with ``mmsakd.registry.MODELS``."""
    with DefaultScope.overwrite_default_scope('mmsakd'), torch.device(device):
        return MODELS.build(model_config(arch, num_classes))


def _apply_rules(module: str, rules: List[Rule]) -> Optional[str]:
    for pattern, target in rules:
        match = re.fullmatch(pattern, module)
        if match is not None:
            return target(match) if callable(target) else match.expand(target)
    return None


def rename_key(key: str, rules: List[Rule]) -> Optional[str]:
    """Rename one source key by the first matching rule; None if none does.

    The rules see the module path only, so a parameter and the buffers of
    one module always move together.
    """
    module, sep, leaf = key.rpartition('.')
    if not sep:
        return None
    new_module = _apply_rules(module, rules)
    return None if new_module is None else f'{new_module}.{leaf}'


def _listing(entries: List[str], what: str) -> List[str]:
    """A count and the first entries, one module each (a BN has five)."""
    shown, modules = [], set()
    for entry in entries:
        module = entry.split(' ', 1)[0].rpartition('.')[0]
        if module not in modules:
            modules.add(module)
            shown.append(f'    {entry}')
        if len(shown) == SHOW:
            break
    return [f'  {len(entries)} {what}, among them:'] + shown


def _strip_module(
    state_dict: Mapping[str, Tensor]
) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Drop ``DataParallel``'s ``module.`` prefix; the keys seen twice."""
    stripped: 'OrderedDict[str, Tensor]' = OrderedDict()
    duplicates = []
    for key, value in state_dict.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if key in stripped:
            duplicates.append(key)
        stripped[key] = value
    return stripped, duplicates


def _convert(
    stripped: Mapping[str, Tensor], arch: str
) -> Tuple['OrderedDict[str, Tensor]', 'OrderedDict[str, List[str]]', int]:
    """Rename and check; the result, the problems found, the class count."""
    family = ARCHS[arch][0]
    rules = FAMILY_RULES[family]
    problems: 'OrderedDict[str, List[str]]' = OrderedDict()

    renamed: Dict[str, Tensor] = OrderedDict()
    sources: Dict[str, str] = {}
    unmapped, duplicates = [], []
    for key, value in stripped.items():
        new_key = rename_key(key, rules)
        if new_key is None:
            unmapped.append(key)
        elif new_key in renamed:
            duplicates.append(f'{key} (as {new_key}, like {sources[new_key]})')
        else:
            renamed[new_key] = value
            sources[new_key] = key
    problems[f'checkpoint keys match no {family} rule'] = unmapped
    problems['keys map to the same name'] = duplicates

    fc_weight = renamed.get('head.fc.weight')
    num_classes = (
        fc_weight.shape[0]
        if isinstance(fc_weight, Tensor) and fc_weight.dim() == 2 else 100)
    expected = build_model(arch, num_classes, device='meta').state_dict()

    missing = [k for k in expected if k not in renamed]
    if not any(k.endswith('.num_batches_tracked') for k in stripped):
        for key in [k for k in missing if k.endswith('num_batches_tracked')]:
            if key.replace('num_batches_tracked', 'running_mean') in renamed:
                renamed[key] = torch.tensor(0, dtype=torch.long)
                missing.remove(key)
    problems['keys of our model are missing'] = missing
    problems['converted keys are not in our model'] = [
        f'{k} (from {sources[k]})' for k in renamed if k not in expected
    ]
    problems['shapes differ'] = [
        f'{k} (from {sources[k]}): checkpoint {tuple(v.shape)} vs model '
        f'{tuple(expected[k].shape)}' for k, v in renamed.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    problems = OrderedDict((k, v) for k, v in problems.items() if v)
    result = OrderedDict((k, renamed[k]) for k in expected if k in renamed)
    return result, problems, num_classes


def matching_archs(state_dict: Mapping[str, Tensor]) -> List[str]:
    """Every ``--arch`` that ``state_dict`` converts to."""
    stripped, duplicates = _strip_module(state_dict)
    if duplicates:
        return []
    found = []
    for arch, (family, _, _) in ARCHS.items():
        rules = FAMILY_RULES[family]
        # the rules alone rule most archs out, without building a model
        if (all(rename_key(k, rules) is not None for k in stripped)
                and not _convert(stripped, arch)[1]):
            found.append(arch)
    return found


def _hint(stripped: Mapping[str, Tensor], arch: str) -> str:
    keys = list(stripped)
    if keys and all(k.startswith(('backbone.', 'head.')) for k in keys):
        return ('  The keys already have mmsakd names: the file looks '
                'converted.')
    found = [a for a in matching_archs(stripped) if a != arch]
    if found:
        return f'  The checkpoint converts as --arch {" / ".join(found)}.'
    return ''


def convert(state_dict: Mapping[str, Tensor],
            arch: str) -> 'OrderedDict[str, Tensor]':
    """Rename a benchmark state dict to our classifier's keys and check it.

    Args:
        state_dict (Mapping[str, Tensor]): The model's state dict, with the
            parameter names of the benchmark's model classes; a
            ``module.`` prefix is stripped.
        arch (str): The benchmark's model name (``--arch``), e.g.
            ``'resnet56'``; see the module docstring.

    Returns:
        OrderedDict[str, Tensor]: The state dict of our ``ImageClassifier``
        for ``arch``, in its order, holding the source tensors.

    Raises:
        ConversionError: If a key matches no rule, two keys get one name, or
            the result does not have exactly the keys and shapes of our
            model for ``arch``.
    """
    arch = resolve_arch(arch)
    stripped, duplicates = _strip_module(state_dict)
    result, problems, num_classes = _convert(stripped, arch)
    if duplicates:
        problems['keys appear with and without "module."'] = duplicates
    if not problems:
        return result
    lines = [
        f'the checkpoint does not convert to --arch {arch} '
        f'({ARCHS[arch][0]} family, {num_classes} classes):'
    ]
    for what, entries in problems.items():
        lines += _listing(entries, what)
    hint = _hint(stripped, arch)
    if hint:
        lines.append(hint)
    lines.append('  Check that --arch names the model the checkpoint was '
                 'trained as.')
    raise ConversionError('\n'.join(lines))


def extract_state_dict(
        checkpoint: object) -> Tuple[Mapping[str, Tensor], List[str]]:
    """The model state dict of a loaded file, and the keys left out.

    Args:
        checkpoint: What ``torch.load`` returned: a dict with ``'model'``
            or ``'state_dict'``, or a bare state dict.

    Returns:
        tuple: The state dict and the other top-level keys of the file.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointLoadError(f'expected a dict in the checkpoint, got '
                                  f'{type(checkpoint).__name__}')
    for name in ('model', 'state_dict'):
        if name in checkpoint:
            state_dict = checkpoint[name]
            others = sorted(str(k) for k in checkpoint if k != name)
            break
    else:
        state_dict, others = checkpoint, []
    if not (isinstance(state_dict, Mapping) and state_dict and all(
            isinstance(k, str) and isinstance(v, Tensor)
            for k, v in state_dict.items())):
        raise CheckpointLoadError(
            'found no state dict (names -> tensors) under "model", '
            '"state_dict" or at the top level; the top-level keys are '
            f'{sorted(map(str, checkpoint))[:SHOW]}')
    return state_dict, others


def load_source(path: str) -> Tuple[Mapping[str, Tensor], dict]:
    """Read ``path`` with ``weights_only=True``; the state dict and info.

    Returns:
        tuple: The model's state dict, and a dict of the file's other
        top-level scalar entries (epoch, accuracy, ...) for the meta.
    """
    if not osp.isfile(path):
        raise CheckpointLoadError(f'cannot read {path}: no such file')
    try:
        checkpoint = load_weights_only(
            path,
            lambda: torch.load(path, map_location='cpu', weights_only=True))
    except LoadError as err:
        raise CheckpointLoadError(str(err)) from None
    state_dict, others = extract_state_dict(checkpoint)
    info = {}
    for key in others:
        value = checkpoint[key]
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (bool, int, float, str)):
            info[key] = value
    return state_dict, info


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a RepDistiller / SAKD CIFAR checkpoint into an '
        'mmsakd ImageClassifier checkpoint.')
    parser.add_argument('src', help='the benchmark checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted one')
    parser.add_argument(
        '--arch',
        required=True,
        choices=ARCH_CHOICES,
        metavar='ARCH',
        help='model name of the benchmark: ' + ', '.join(ARCH_CHOICES))
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    arch = resolve_arch(args.arch)
    if same_file(args.src, args.dst):
        print(
            f'repdistiller2mmsakd: error: the output {args.dst!r} is the '
            f'input {args.src!r}; write the converted checkpoint to another '
            'path (the input is kept as it is).',
            file=sys.stderr)
        return 1
    try:
        source, info = load_source(args.src)
        state_dict = convert(source, arch)
    except (CheckpointLoadError, ConversionError) as err:
        print(f'repdistiller2mmsakd: error: {err}', file=sys.stderr)
        return 1
    num_classes = state_dict['head.fc.weight'].shape[0]
    meta = dict(
        arch=arch,
        num_classes=num_classes,
        model=model_config(arch, num_classes),
        source=osp.basename(args.src),
        source_info=info,
        converter='tools/model_converters/repdistiller2mmsakd.py')
    # atomic for local files (mmsakd.compat.atomic_checkpoint)
    mmengine_checkpoint.save_checkpoint(
        dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'converted {len(state_dict)} tensors of {arch} '
          f'({num_classes} classes) to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
