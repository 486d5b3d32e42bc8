"""Load a distillation teacher strictly, and check that a checkpoint fits.

MMRazor 1.0.0's ``SingleTeacherDistill.__init__`` (the base of every
single-teacher algorithm, ``mmsakd.SpotAdaptiveDistill`` included) loads
``teacher_ckpt`` with mmengine's ``load_checkpoint`` and its default
``strict=False``. A checkpoint of another architecture (resnet20 weights for
a resnet56 teacher, a resnet8x4 with other shapes) or a distillation run's
own checkpoint (keys ``architecture.*`` / ``teacher.*``) then loads nothing
or a part, the rest of the teacher stays random, and training "succeeds"
from a teacher at chance accuracy with only a "missing keys" warning in the
log.

:func:`patch_strict_teacher_loading` replaces the ``load_checkpoint`` that
module calls with :func:`load_teacher_checkpoint`, which

* reads the file with ``weights_only=True`` (:mod:`.checkpoint`);
* takes the ``architecture.`` (student), ``teacher.`` or ``student.`` part
  of a distillation checkpoint when exactly that part fits the teacher;
* otherwise fails before training when any key is missing, unexpected or of
  another shape, with how many and the first few, naming
  ``model.teacher_ckpt``.

:func:`check_checkpoint_fits` is the same check for ``tools/test.py``.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from torch import nn

from .checkpoint import CheckpointLoadError

TEACHER_KEY = 'model.teacher_ckpt'
# the parts of a checkpoint written by a distillation run
DISTILL_PARTS = (('architecture.', 'student'), ('teacher.', 'teacher'),
                 ('student.', 'student'))
# keys listed per kind of problem
SHOW = 4


def checkpoint_state_dict(checkpoint, path: str) -> 'OrderedDict':
    """The state dict of a loaded checkpoint, ``module.`` stripped."""
    state_dict = checkpoint
    if isinstance(checkpoint, Mapping) and isinstance(
            checkpoint.get('state_dict'), Mapping):
        state_dict = checkpoint['state_dict']
    if not (isinstance(state_dict, Mapping) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in state_dict.items())):
        raise CheckpointLoadError(
            path, f'{path} holds no state dict (names -> tensors) at the top '
            'level or under "state_dict"; write it with torch.save('
            "{'state_dict': model.state_dict()}, path)")
    metadata = getattr(state_dict, '_metadata', None)
    result = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    if metadata is not None:
        result._metadata = metadata
    return result


def checkpoint_part(state_dict: Mapping, prefix: str) -> 'OrderedDict':
    """The entries of one module of a state dict, ``prefix`` (e.g.
    ``'architecture.'``) removed, as that module's own state dict.

    Unlike mmengine's ``_load_checkpoint_with_prefix``, the ``_metadata`` (the
    module versions that BatchNorm reads when loading) follows the entries,
    the module's own entry becoming the root's.
    """
    owner = prefix[:-1]
    part = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                       if k.startswith(prefix))
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        part._metadata = OrderedDict(('' if k == owner else k[len(prefix):], v)
                                     for k, v in metadata.items()
                                     if k == owner or k.startswith(prefix))
    return part


def mismatch(expected: Mapping[str, torch.Tensor],
             given: Mapping[str, torch.Tensor]) -> Dict[str, List[str]]:
    """Missing, unexpected and other-shape keys of ``given``; empty if it
    fits ``expected`` exactly."""
    problems = OrderedDict()
    problems['missing'] = [k for k in expected if k not in given]
    problems['unexpected'] = [k for k in given if k not in expected]
    problems['of another shape'] = [
        f'{k} (checkpoint {tuple(v.shape)}, model '
        f'{tuple(expected[k].shape)})' for k, v in given.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    return OrderedDict((k, v) for k, v in problems.items() if v)


def _first_modules(keys: List[str]) -> List[str]:
    """The first key of each of the first modules (a BN has five keys)."""
    shown, modules = [], set()
    for key in keys:
        module = key.split(' ', 1)[0].rpartition('.')[0]
        if module not in modules:
            modules.add(module)
            shown.append(key)
        if len(shown) == SHOW:
            break
    return shown


def _summary(problems: Dict[str, List[str]]) -> str:
    return '; '.join(f'{len(keys)} key(s) {what} (e.g. '
                     f'{", ".join(_first_modules(keys))})'
                     for what, keys in problems.items())


def _distill_parts(state_dict: Mapping) -> List[Tuple[str, str]]:
    return [(prefix, who) for prefix, who in DISTILL_PARTS if any(
        k.startswith(prefix) for k in state_dict)]


def _extract_how(path: str, prefix: str) -> str:
    if prefix == 'architecture.':
        return ('python tools/model_converters/convert_kd_ckpt_to_student.py '
                f"'{path}' --out-path part.pth")
    return ('python -c "import mmsakd, torch; c = torch.load('
            f"'{path}', weights_only=True)['state_dict']; "
            "torch.save({'state_dict': {k[" + str(len(prefix)) + ':]: v '
            f"for k, v in c.items() if k.startswith('{prefix}')}}}}, "
            "'part.pth')\"")


def select_state_dict(model: nn.Module,
                      state_dict: Mapping,
                      path: str,
                      key: str,
                      allow_parts: bool = True) -> Tuple[Mapping, str]:
    """The part of ``state_dict`` that fits ``model`` exactly.

    Args:
        model (nn.Module): The model to load.
        state_dict (Mapping): The checkpoint's state dict.
        path (str): The file, for messages.
        key (str): The config key or argument that named the file.
        allow_parts (bool): Accept the one part of a distillation checkpoint
            that fits. Defaults to True.

    Returns:
        tuple: The fitting state dict and a note saying which part of a
        distillation checkpoint it is (empty for the whole file).

    Raises:
        CheckpointLoadError: No part fits; the message counts and lists the
            missing, unexpected and other-shape keys, and says how to fix it.
    """
    expected = model.state_dict()
    problems = mismatch(expected, state_dict)
    if not problems:
        return state_dict, ''
    parts = _distill_parts(state_dict)
    fitting = [(prefix, who) for prefix, who in parts
               if not mismatch(expected, checkpoint_part(state_dict, prefix))]
    if len(fitting) == 1 and allow_parts:
        prefix, who = fitting[0]
        return checkpoint_part(state_dict, prefix), (
            f'{key}={path!r} is a distillation checkpoint; loaded its '
            f'{prefix[:-1]}.* part (the {who} of that run)')
    lines = [
        f'{key}={path!r} does not fit {type(model).__name__}: '
        f'{_summary(problems)}.'
    ]
    if fitting:
        names = ' and '.join(f'{p}*' for p, _ in fitting)
        lines.append(f'It is a distillation checkpoint whose {names} part'
                     f'{"s both fit" if len(fitting) > 1 else " fits"}: ' +
                     ('' if key == TEACHER_KEY else 'evaluate it with the '
                      'distillation config it was trained with, or ') +
                     'extract the part you mean, e.g. ' +
                     _extract_how(path, fitting[0][0]) +
                     f', and pass part.pth as {key}.')
        raise CheckpointLoadError(path, ' '.join(lines), key=key)
    if parts:
        lines.append('It is a distillation checkpoint (parts ' +
                     ', '.join(f'{p}*' for p, _ in parts) +
                     '), and none of them is this model.')
    model_parts = _distill_parts(expected)
    if model_parts and not parts:
        lines.append(
            'The model is a distillation model but the checkpoint is a '
            "single network's (keys " + ', '.join(list(state_dict)[:2]) +
            ' ...): evaluate it with the config it was trained with (e.g. '
            'configs/vanilla/<model>.py), or pass a checkpoint written by '
            'training this config.')
    elif key == TEACHER_KEY:
        lines.append(
            f'Point {key} at a checkpoint of the teacher (model.teacher), '
            'e.g. work_dirs/<teacher config>/best_*.pth, or convert a CIFAR '
            'benchmark checkpoint with tools/model_converters/'
            'repdistiller2mmsakd.py --arch <teacher arch>.')
    else:
        lines.append('Pass a checkpoint written by training this config.')
    raise CheckpointLoadError(path, ' '.join(lines), key=key)


def _load_state_dict(path: str, key: str) -> 'OrderedDict':
    from mmengine.runner.checkpoint import _load_checkpoint
    try:
        return checkpoint_state_dict(
            _load_checkpoint(path, map_location='cpu'), path)
    except CheckpointLoadError as err:
        raise CheckpointLoadError(path, f'{key}: {err}', err.refused,
                                  key) from None


def check_checkpoint_fits(model: nn.Module, path: str, key: str) -> None:
    """Fail unless the whole of ``path`` fits ``model`` exactly (what
    ``Runner.load_checkpoint`` needs)."""
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    select_state_dict(
        model, _load_state_dict(path, key), path, key, allow_parts=False)


def load_teacher_checkpoint(model: nn.Module, filename: str, *args,
                            **kwargs) -> 'OrderedDict':
    """Strict, ``weights_only`` stand-in for mmengine's ``load_checkpoint``
    in ``SingleTeacherDistill.__init__`` (extra arguments are ignored).

    Returns:
        OrderedDict: The state dict loaded into ``model``.
    """
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import load_state_dict

    state_dict, note = select_state_dict(
        model, _load_state_dict(filename, TEACHER_KEY), filename, TEACHER_KEY)
    load_state_dict(model, state_dict, strict=True)
    print_log(
        note or f'{TEACHER_KEY}: loaded {filename} (strict)',
        logger='current',
        level=30 if note else 20)
    return state_dict


def patch_strict_teacher_loading() -> list:
    """Make MMRazor's ``SingleTeacherDistill`` load ``teacher_ckpt`` with
    :func:`load_teacher_checkpoint` (idempotent).

    Returns:
        list: What was patched (empty when already done).
    """
    from mmrazor.models.algorithms.distill.configurable import \
        single_teacher_distill as module
    if module.load_checkpoint is load_teacher_checkpoint:
        return []
    module.load_checkpoint = load_teacher_checkpoint
    return [f'{module.__name__}.load_checkpoint']
