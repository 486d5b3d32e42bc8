"""Early, explicit checks of a config before the Runner builds anything."""
import contextlib
import os.path as osp
from typing import Iterator, Optional, Tuple

from mmengine.config import Config

from mmsakd.compat.atomic_checkpoint import not_a_regular_file

_REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://',
                    'torchvision://', 'modelzoo://', 'mmcls://')


def _pretrained_checkpoints(node, key: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(config key, path)`` of every ``teacher_ckpt`` and every
    ``init_cfg=dict(type='Pretrained', checkpoint=...)`` below ``node``."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(
                node.get('checkpoint'), str):
            yield f'{key}.checkpoint', node['checkpoint']
        for name, value in node.items():
            child = f'{key}.{name}'
            if name == 'teacher_ckpt' and isinstance(value, str):
                yield child, value
            else:
                yield from _pretrained_checkpoints(value, child)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_checkpoints(value, f'{key}[{i}]')


def check_teacher_ckpt(cfg: Config) -> None:
    """Fail early when the model config names a missing local checkpoint.

    Covers ``model.teacher_ckpt`` and every ``Pretrained`` ``init_cfg`` in
    the model (e.g. a pre-trained factor-transfer paraphraser). MMRazor and
    MMEngine only notice a missing file after both networks are built, with
    ``FileNotFoundError: <path> can not be found``; this check names the
    config key and the fix instead. Remote paths (``https://``...) are left
    to MMEngine.

    Raises:
        FileNotFoundError: When a local path does not exist.
        ValueError: When it is not a regular file (a FIFO, a device...).
    """
    model = cfg.get('model', None)
    if model is None:
        return
    for key, path in _pretrained_checkpoints(model, 'model'):
        if not path or path.startswith(_REMOTE_PREFIXES):
            continue
        kind = not_a_regular_file(osp.expanduser(path))
        if kind is None:
            continue
        if kind != 'missing':  # a FIFO would block, a device read for ever
            raise ValueError(f'{key}={path!r} is {kind}, not a regular '
                             'checkpoint file; point it at the .pth file.')
        if key == 'model.teacher_ckpt':
            fix = ('Train the teacher first (python tools/train.py <teacher '
                   'config>), then point model.teacher_ckpt at its '
                   'checkpoint, e.g. --cfg-options model.teacher_ckpt='
                   'work_dirs/<teacher>/best_accuracy_top1_epoch_N.pth')
        else:
            fix = ('Run the config that produces it first (see the '
                   f'config\'s comments), or pass --cfg-options {key}=PATH')
        raise FileNotFoundError(f'{key}={path!r} does not exist. {fix}')


@contextlib.contextmanager
def checkpoint_errors_name_keys(cfg: Config) -> Iterator[None]:
    """Prefix a refused or unreadable checkpoint's error with the config key
    that named the file (``model.<...>.init_cfg.checkpoint``, ``load_from``
    or ``--resume``); the loader itself only knows the path."""
    from mmsakd.compat import CheckpointLoadError
    try:
        yield
    except CheckpointLoadError as err:
        keys = {
            osp.abspath(osp.expanduser(path)): key
            for key, path in _pretrained_checkpoints(
                cfg.get('model', None), 'model')
        }
        resume = bool(cfg.get('resume', False))
        load_from = cfg.get('load_from', None)
        if load_from:
            keys.setdefault(
                osp.abspath(osp.expanduser(load_from)),
                '--resume' if resume else 'load_from')
        key = keys.get(osp.abspath(osp.expanduser(err.path)))
        if key is None and resume:
            key = '--resume (the latest checkpoint of work_dir)'
        if key is None or err.key is not None:
            raise
        raise CheckpointLoadError(err.path, f'{key}: {err}', err.refused,
                                  key) from None


def _dataset_classes(dataset) -> Optional[Tuple[str, int]]:
    """``(dataset type, class count)`` of a dataset config, following
    wrappers (``dataset=dict(...)``); None when unknown."""
    from mmsakd.registry import DATASETS
    while isinstance(dataset, dict):
        metainfo = dataset.get('metainfo', None) or {}
        if 'classes' in metainfo:
            return str(dataset.get('type')), len(metainfo['classes'])
        if isinstance(dataset.get('dataset', None), dict):
            dataset = dataset['dataset']
            continue
        try:
            cls = DATASETS.get(dataset.get('type'))
        except (KeyError, TypeError):
            return None
        classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
        if not classes:
            return None
        return str(dataset.get('type')), len(classes)
    return None


def check_num_classes(model, cfg: Config) -> None:
    """Fail before training when a classification head has fewer classes
    than the training set (labels >= ``num_classes`` would fail in the loss
    with ``Target N is out of bounds``, or a CUDA assert).

    Args:
        model (nn.Module): The built model (a distillation model's student
            and teacher heads are both checked).
        cfg (Config): The config, for ``train_dataloader.dataset``.

    Raises:
        ValueError: Naming the head, its ``num_classes`` and the dataset.
    """
    found = _dataset_classes((cfg.get('train_dataloader', None)
                              or {}).get('dataset', None))
    if found is None:
        return
    dataset, n = found
    model = getattr(model, 'module', model)  # DDP wrapper
    for name, module in model.named_modules():
        k = getattr(module, 'num_classes', None)
        if not name.endswith('head') or not isinstance(k, int) or k >= n:
            continue
        raise ValueError(
            f'model.{name}.num_classes={k}, but the training set ({dataset}) '
            f'has {n} classes (labels 0..{n - 1}): set '
            f'model.{name}.num_classes={n} (e.g. --cfg-options '
            f'model.{name}.num_classes={n}), or train on a dataset with '
            f'{k} classes.')
