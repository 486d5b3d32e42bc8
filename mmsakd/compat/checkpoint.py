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
"""
import pickle
import types

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
        'allows public methods of mmengine.logging.HistoryBuffer. If you '
        'trust this checkpoint, load it yourself with torch.load(..., '
        'weights_only=False) and save its state_dict.')


def _numpy_globals() -> list:
    core = getattr(np, '_core', None) or np.core  # numpy 2 / numpy 1
    multiarray = core.multiarray
    names = [
        (multiarray._reconstruct,
         f'{multiarray.__name__}._reconstruct'),
        (multiarray.scalar, f'{multiarray.__name__}.scalar'),
    ]
    if multiarray.__name__ != 'numpy.core.multiarray':
        # checkpoints written with numpy 1.x name the old module
        names += [
            (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
            (multiarray.scalar, 'numpy.core.multiarray.scalar')
        ]
    names += [np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes (Float64DType...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
            and isinstance(getattr(dtypes, n), type)
        ]
    return names


def numpy_globals_by_name() -> dict:
    """The numpy part of the allow-list as ``{'module.name': object}``.

    The same table for plain ``pickle`` allow-lists (the dataset files of
    :mod:`mmsakd.datasets.safe_pickle`).
    """
    table = {}
    for entry in _numpy_globals():
        obj, name = entry if isinstance(entry, tuple) else (
            entry, f'{entry.__module__}.{entry.__name__}')
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
