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
  falls back to the newest intact ``*.pth`` of the work dir that is not a
  ``best_*`` checkpoint (those hold no optimizer state), with a warning; when
  there is nothing to resume it warns, naming the directory searched, and
  returns ``None`` (training starts from scratch, as upstream).

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
import uuid
import zipfile
from typing import Optional

_PATCHED_ATTR = '_mmsakd_atomic_patched'


def checkpoint_is_intact(path: str) -> bool:
    """Whether ``path`` is a complete ``torch.save`` zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def newest_intact_checkpoint(directory: str,
                             pattern: str = '*.pth',
                             exclude: str = 'best_*') -> Optional[str]:
    """The most recently written intact checkpoint of ``directory``.

    Args:
        directory (str): Where to look (not recursive).
        pattern (str): Glob of the candidate file names.
        exclude (str): Glob of file names to skip ('' to skip none).

    Returns:
        str or None: The path, or None when no candidate is intact.
    """
    candidates = [
        p for p in glob.glob(osp.join(glob.escape(directory), pattern))
        if osp.isfile(p)
        and not (exclude and fnmatch.fnmatch(osp.basename(p), exclude))
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
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip() or None
    if named is not None and checkpoint_is_intact(named):
        return named
    fallback = newest_intact_checkpoint(path)
    if named is not None:
        state = 'missing' if not osp.exists(named) else 'truncated or corrupt'
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
              '*.pth): training starts from scratch. Check --work-dir, or '
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
