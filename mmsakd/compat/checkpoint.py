"""Load MMEngine's own checkpoints with ``weights_only=True`` (torch >= 2.6).

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it refuses
any pickled global it does not know, so a downloaded file cannot run code.
mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, and the
checkpoints its ``Runner`` writes hold a ``message_hub`` with
``HistoryBuffer`` objects (numpy arrays inside, and the buffer's statistics
methods pickled as ``getattr(HistoryBuffer, 'mean')``). Resuming, ``load_from``
and a ``teacher_ckpt`` written by a Runner therefore fail with
``Unsupported global: GLOBAL mmengine.logging.history_buffer.HistoryBuffer``
(upstream open-mmlab/mmengine#1655, #1650).

Turning ``weights_only`` off would make every checkpoint able to run code.
Instead this module keeps ``weights_only=True`` and allow-lists exactly the
globals those checkpoints need:

* ``HistoryBuffer`` (plain data: two numpy arrays and a max length);
* numpy's array/scalar reconstruction and dtypes;
* ``builtins.getattr`` mapped to :func:`restricted_getattr`, which only looks
  up public functions of an allow-listed class (``HistoryBuffer.mean`` ...)
  and raises for anything else.

Everything else (``os.system``, arbitrary classes, ...) is still refused.

``torch.load``'s default can be turned off from outside
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes every call that does not pass
``weights_only`` unpickle anything), and mmengine never passes it. So
:func:`use_weights_only_loader` also replaces mmengine's loaders of local
files and URLs (the ``''`` scheme of ``CheckpointLoader`` and the
``load_url`` of ``http(s)://``, ``torchvision://``, ``open-mmlab://``) with
ones that pass ``weights_only=True`` explicitly: resume, ``load_from``,
``init_cfg=dict(type='Pretrained')`` and ``teacher_ckpt`` all go through
them. Their errors (:class:`CheckpointLoadError`) name the file and say
whether it was refused (it would run code) or is corrupt.
"""
import os.path as osp
import pickle
import types
from typing import Callable, Optional

import numpy as np

# classes whose *public functions* restricted_getattr may return
_GETATTR_OWNERS: tuple = ()


def restricted_getattr(owner, name: str):
    """Stand-in for ``getattr`` during ``weights_only`` unpickling.

    Args:
        owner: The object the checkpoint asks an attribute of.
        name (str): The attribute name.

    Returns:
        The function ``owner.name`` when ``owner`` is an allow-listed class and
        ``name`` a public function defined on it.

    Raises:
        pickle.UnpicklingError: For any other lookup.
    """
    if (owner in _GETATTR_OWNERS and isinstance(name, str)
            and not name.startswith('_')
            and isinstance(owner.__dict__.get(name), types.FunctionType)):
        return owner.__dict__[name]
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({owner!r}, {name!r}): mmsakd only '
        'allows public methods of mmengine.logging.HistoryBuffer.')


def _numpy_globals() -> list:
    core = getattr(np, '_core', None) or np.core  # numpy 2 / numpy 1
    multiarray = core.multiarray
    names = [
        (multiarray._reconstruct, f'{multiarray.__name__}._reconstruct'),
        (multiarray.scalar, f'{multiarray.__name__}.scalar'),
    ]
    if multiarray.__name__ != 'numpy.core.multiarray':
        # checkpoints written with numpy 1.x name the old module
        names += [(multiarray._reconstruct,
                   'numpy.core.multiarray._reconstruct'),
                  (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    names += [np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes (Float64DType...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    return names


def numpy_globals_by_name() -> dict:
    """The numpy part of the allow-list as ``{'module.name': object}``.

    The same table for plain ``pickle`` allow-lists (the dataset files of
    :mod:`mmsakd.datasets.safe_pickle`).
    """
    table = {}
    for entry in _numpy_globals():
        obj, name = entry if isinstance(
            entry, tuple) else (entry, f'{entry.__module__}.{entry.__name__}')
        table[name] = obj
    return table


def allow_mmengine_checkpoint_globals() -> list:
    """Register the allow-list with ``torch.serialization``.

    Returns:
        list: What was registered; empty on a torch without
        ``add_safe_globals`` (< 2.4), where there is nothing to do.
    """
    import torch
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return []
    from mmengine.logging import HistoryBuffer

    global _GETATTR_OWNERS
    _GETATTR_OWNERS = (HistoryBuffer, )
    safe = [HistoryBuffer, (restricted_getattr, 'builtins.getattr')]
    safe += _numpy_globals()
    torch.serialization.add_safe_globals(safe)
    return safe


class CheckpointLoadError(pickle.UnpicklingError, RuntimeError):
    """A checkpoint file was refused or cannot be read.

    Attributes:
        path (str): The file.
        refused (bool): True when the file would run code while being
            unpickled, False when it is corrupt or not a checkpoint.
        key (str, optional): The config key or argument that named the
            file, once the message names it.
    """

    def __init__(self,
                 path: str,
                 message: str,
                 refused: bool = False,
                 key: Optional[str] = None):
        super().__init__(message)
        self.path = path
        self.refused = refused
        self.key = key


# the lines of torch's weights_only errors that advise turning it off
_TORCH_ADVICE = ('Weights only load failed', 'Please file an issue',
                 'Check the documentation', 'In PyTorch 2.6')


def _torch_detail(err: BaseException) -> str:
    lines = []
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith('Weights only load failed'):
            continue
        if line and not line.startswith(_TORCH_ADVICE):
            lines.append(line.split(' WeightsUnpickler error: ')[-1])
    return ' '.join(lines) or type(err).__name__


def load_weights_only(path: str, load: Callable[[], object]):
    """Run ``load`` (a ``torch.load(..., weights_only=True)``) and explain
    its failures.

    Args:
        path (str): The file ``load`` reads, for the messages.
        load (callable): Returns the loaded checkpoint.

    Raises:
        CheckpointLoadError: ``refused=True`` when the file asks for a global
            outside the allow-list (unpickling it could run code); otherwise
            the file is corrupt, truncated or not a PyTorch checkpoint.
    """
    try:
        return load()
    except pickle.UnpicklingError as err:
        detail = _torch_detail(err)
        if 'GLOBAL' in detail or 'refused getattr' in detail:
            raise CheckpointLoadError(
                path,
                f'refused to load {path}: it holds an object that is not '
                f'tensors, numbers or plain containers ({detail}), and '
                'unpickling it could run code. Use a checkpoint written by '
                'tools/train.py or by tools/model_converters/, or a plain '
                'state_dict of tensors.',
                refused=True) from None
        reason = f'{detail}'
    except EOFError:
        reason = 'the file is empty or ends too early'
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        reason = f'{type(err).__name__}: {_torch_detail(err)}'
    raise CheckpointLoadError(
        path, f'cannot read {path}: it is not a valid PyTorch checkpoint '
        f'(corrupt, truncated or another format; {reason}). Write it '
        'again, e.g. re-run the training or the conversion that made it.')


def load_from_local_weights_only(filename: str, map_location=None):
    """mmengine's local checkpoint loader, with ``weights_only=True``."""
    import torch
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_weights_only(
        filename, lambda: torch.load(
            filename, map_location=map_location, weights_only=True))


def load_url_weights_only(url: str,
                          model_dir=None,
                          map_location=None,
                          progress: bool = True,
                          check_hash: bool = False,
                          file_name=None):
    """mmengine's ``load_url`` (download once, then load), with
    ``weights_only=True``."""
    import torch
    return load_weights_only(
        url, lambda: torch.hub.load_state_dict_from_url(
            url,
            model_dir=model_dir,
            map_location=map_location,
            progress=progress,
            check_hash=check_hash,
            file_name=file_name,
            weights_only=True))


def use_weights_only_loader() -> list:
    """Make mmengine load local files and URLs with ``weights_only=True``.

    Returns:
        list: What was replaced (empty when already done).
    """
    from mmengine.runner import checkpoint as mmengine_checkpoint
    loader = mmengine_checkpoint.CheckpointLoader
    patched = []
    if loader._schemes.get('') is not load_from_local_weights_only:
        loader.register_scheme('', load_from_local_weights_only, force=True)
        patched.append('CheckpointLoader[""]')
    if mmengine_checkpoint.load_url is not load_url_weights_only:
        mmengine_checkpoint.load_url = load_url_weights_only
        patched.append('mmengine.runner.checkpoint.load_url')
    return patched
