"""Write checkpoints atomically; resume from the newest intact one.

mmengine 0.10.7 writes a checkpoint by opening its final path and writing
the bytes (``mmengine.runner.checkpoint.save_checkpoint`` through
``LocalBackend.put``). A full disk, a quota or a kill in the middle leaves a
truncated ``epoch_N.pth`` or ``best_*.pth`` under the final name, which
``--resume auto`` (``find_latest_checkpoint`` reads ``last_checkpoint``
blindly) and scripts that copy the best checkpoint then pick up.

This module patches, for local paths:

* ``save_checkpoint``: the checkpoint is written to a hidden temporary file
  in the same directory, flushed to disk, then renamed over the final name
  with :func:`os.replace` (atomic on POSIX and Windows). A failed write
  removes the temporary file and leaves an existing file of that name as it
  was. Other storage backends (``s3://``, ``pavi://``...) are left to
  mmengine.
* ``find_latest_checkpoint`` (``--resume auto`` / ``resume=True`` without a
  path): when ``last_checkpoint`` names a missing or truncated file, it
  falls back to the newest intact checkpoint of the run itself, named
  ``epoch_<N>.pth`` or ``iter_<N>.pth`` as mmengine's ``CheckpointHook``
  names them, with a warning: ``best_*`` checkpoints hold no optimizer
  state, and other ``.pth`` files in the work dir (a student exported by
  ``tools/model_converters/convert_kd_ckpt_to_student.py``, a copied
  teacher) are not this run's state. When there is nothing to resume it
  warns, naming the directory searched, and returns ``None`` (training
  starts from scratch, as upstream).

Only regular files are read. A FIFO, a device or a socket given as a
checkpoint (``--resume PATH``, a ``last_checkpoint`` that names one, or a
``last_checkpoint`` that is one) would block for ever or read without end
(``/dev/zero``); :func:`not_a_regular_file` says what such a path is,
:func:`checkpoint_is_intact` is False for it without opening it, and
``--resume auto`` skips it with a warning.

A checkpoint counts as intact when it is a complete zip archive whose
records all pass their CRC check (the format ``torch.save`` writes); a
truncated file lacks the archive's central directory.
"""
import fnmatch
import functools
import glob
import logging
import os
import os.path as osp
import re
import stat
import uuid
import zipfile
from typing import Optional

_PATCHED_ATTR = '_mmsakd_atomic_patched'
# the names mmengine's CheckpointHook gives the checkpoints of a run
RUN_CHECKPOINT = re.compile(r'(epoch|iter)_\d+\.pth')

_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
          (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))


def not_a_regular_file(path: str) -> Optional[str]:
    """What ``path`` is when it is not a regular file, without opening it.

    Returns:
        str or None: ``'missing'``, ``'a FIFO'``, ``'a character device'``,
        ``'a directory'``, ... or None for a regular file (or a link to
        one).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return 'missing'
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return 'not a regular file'


def checkpoint_is_intact(path: str) -> bool:
    """Whether ``path`` is a regular file holding a complete
    ``torch.save`` zip archive."""
    if not_a_regular_file(path) is not None:
        return False  # never open a FIFO or a device
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def newest_intact_checkpoint(
        directory: str,
        pattern: str = '*.pth',
        exclude: str = 'best_*',
        name: Optional[re.Pattern] = None) -> Optional[str]:
    """The most recently written intact checkpoint of ``directory``.

    Args:
        directory (str): Where to look (not recursive).
        pattern (str): Glob of the candidate file names.
        exclude (str): Glob of file names to skip ('' to skip none).
        name (re.Pattern, optional): When given, a candidate's file name
            must match it whole (e.g. :data:`RUN_CHECKPOINT`).

    Returns:
        str or None: The path, or None when no candidate is intact.
    """
    candidates = [
        p for p in glob.glob(osp.join(glob.escape(directory), pattern))
        if osp.isfile(p)
        and not (exclude and fnmatch.fnmatch(osp.basename(p), exclude)) and (
            name is None or name.fullmatch(osp.basename(p)))
    ]
    candidates.sort(key=osp.getmtime, reverse=True)
    for path in candidates:
        if checkpoint_is_intact(path):
            return path
    return None


def _is_local(filename: str, file_client_args, backend_args) -> bool:
    from mmengine.fileio import LocalBackend, get_file_backend
    if file_client_args is not None or filename.startswith('pavi://'):
        return False
    backend = get_file_backend(filename, backend_args=backend_args)
    return isinstance(backend, LocalBackend)


def _wrap_save(original):

    @functools.wraps(original)
    def save_checkpoint(checkpoint,
                        filename,
                        file_client_args=None,
                        backend_args=None):
        if not _is_local(str(filename), file_client_args, backend_args):
            return original(checkpoint, filename, file_client_args,
                            backend_args)
        import torch
        filename = osp.abspath(str(filename))
        directory = osp.dirname(filename)
        os.makedirs(directory, exist_ok=True)
        # hidden, same directory (so the rename stays on one file system),
        # no .pth suffix (so no checkpoint search picks it up)
        tmp = osp.join(directory,
                       f'.{osp.basename(filename)}.{uuid.uuid4().hex}.tmp')
        try:
            with open(tmp, 'xb') as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filename)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    setattr(save_checkpoint, _PATCHED_ATTR, True)
    return save_checkpoint


def _warn(message: str) -> None:
    from mmengine.logging import print_log
    print_log(message, logger='current', level=logging.WARNING)


def find_latest_checkpoint(path: str) -> Optional[str]:
    """``--resume auto``: the checkpoint to resume in work dir ``path``."""
    record = osp.join(path, 'last_checkpoint')
    named = None
    record_kind = not_a_regular_file(record)
    if record_kind is None:
        with open(record) as f:
            named = f.read().strip() or None
    if named is not None and checkpoint_is_intact(named):
        return named
    fallback = newest_intact_checkpoint(path, name=RUN_CHECKPOINT)
    if record_kind not in (None, 'missing'):
        _warn(f'--resume auto: {record} is {record_kind}, not a regular '
              'file; it is not read (delete it).')
    if named is not None:
        kind = not_a_regular_file(named)
        state = ('truncated or corrupt' if kind is None else
                 kind if kind == 'missing' else f'{kind}, not a regular file')
        found = (f'resuming from {fallback}, the newest intact checkpoint '
                 'there, instead' if fallback else
                 'no intact checkpoint is left there: training starts from '
                 'scratch')
        _warn(f'--resume auto: {record} names {named}, which is {state}; '
              f'{found}.')
    elif fallback is not None:
        _warn(f'--resume auto: no last_checkpoint file in {osp.abspath(path)}'
              f'; resuming from {fallback}, the newest intact checkpoint '
              'there.')
    else:
        _warn('--resume auto: nothing to resume in work dir '
              f'{osp.abspath(path)} (no last_checkpoint file, no intact '
              'epoch_<N>.pth or iter_<N>.pth): training starts from '
              'scratch. Check --work-dir, or '
              'pass the checkpoint with --resume PATH.')
    return fallback


def _wrap_find(original):

    @functools.wraps(original)
    def find(path: str) -> Optional[str]:
        return find_latest_checkpoint(path)

    setattr(find, _PATCHED_ATTR, True)
    return find


def patch_atomic_checkpoints() -> list:
    """Apply the patches (idempotent); return the names patched."""
    import mmengine.runner as runner_pkg
    from mmengine.runner import _flexible_runner
    from mmengine.runner import checkpoint as checkpoint_module
    from mmengine.runner import runner as runner_module

    patched = []
    for name, wrap, modules in (
        ('save_checkpoint', _wrap_save, (checkpoint_module, runner_pkg,
                                         runner_module)),
        ('find_latest_checkpoint', _wrap_find,
         (checkpoint_module, runner_pkg, runner_module, _flexible_runner)),
    ):
        new = getattr(checkpoint_module, name)
        if not getattr(new, _PATCHED_ATTR, False):
            new = wrap(new)
        for module in modules:
            if not getattr(getattr(module, name), _PATCHED_ATTR, False):
                setattr(module, name, new)
                patched.append(f'{module.__name__}.{name}')
    return patched
