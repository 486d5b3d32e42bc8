"""One training run per work dir.

Two runs started into one work dir both train, and the checkpoints,
``last_checkpoint`` and config dump of one silently overwrite the other's.
:class:`WorkDirLock` is a lock file, ``<work_dir>/run.lock``, holding the
owner's pid, host, process start time and command line:

* no lock file: it is created (complete, by a hard link that fails on an
  existing name: of two runs starting at once exactly one gets it);
* a lock of a live run: :class:`WorkDirLocked` names the work dir, the other
  run (pid, host, start, command) and the ways out;
* a stale lock (its process is gone: the run was killed before it could
  remove it, e.g. by ``SIGKILL`` or a lost node) on this host: it is taken
  over with a warning that names the dead run. A pid reused by an unrelated
  process is told apart by the process start time where ``/proc`` has it;
* a lock written on another host: its process cannot be checked from here,
  so it counts as live; the message says to delete the file if that run is
  gone.

The lock is removed when the run ends, by success or by an exception. In
distributed training only global rank 0 takes it (``tools/train.py``).
"""
import json
import os
import os.path as osp
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Optional

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

LOCK_NAME = 'run.lock'


class WorkDirLocked(RuntimeError):
    """Another live run holds the work dir."""


def _start_time(pid: int) -> Optional[str]:
    """The kernel's start time of process ``pid`` (Linux), or None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            # the command name (field 2) may hold spaces: split after it
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the process of a lock written on this host still runs."""
    pid = owner.get('pid')
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    started = owner.get('start_time')
    now = _start_time(pid)
    return started is None or now is None or started == now


def _describe(owner: dict) -> str:
    started = owner.get('started')
    when = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)) \
        if isinstance(started, (int, float)) else 'unknown time'
    return (f'pid {owner.get("pid")} on host {owner.get("host")}, started '
            f'{when}: {owner.get("command", "?")}')


@contextmanager
def _guard(directory: str):
    """Serialise the check-and-take-over of stale locks between processes
    (an exclusive ``flock`` of the work dir; skipped where the file system
    has none)."""
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # releases the flock


class WorkDirLock:
    """Hold ``<work_dir>/run.lock`` for the lifetime of a training run.

    Args:
        work_dir (str): The run's work dir (created when missing).
        warn (callable, optional): Receives the stale-lock warning. Defaults
            to mmengine's ``print_log`` at WARNING level.

    Example:
        >>> with WorkDirLock(cfg.work_dir):
        ...     Runner.from_cfg(cfg).train()
    """

    def __init__(self, work_dir: str, warn=None) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self._warn = warn
        self._token: Optional[str] = None

    def _owner(self) -> dict:
        return dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            start_time=_start_time(os.getpid()),
            started=time.time(),
            command=' '.join([osp.basename(sys.executable)] + sys.argv),
            token=self._token)

    def _read(self) -> Optional[dict]:
        try:
            with open(self.path) as f:
                owner = json.loads(f.read(65536))
            return owner if isinstance(owner, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: a lock cut short by a crash

    def _written(self) -> str:
        """A hidden file next to the lock holding this run's owner record
        (so the lock appears complete, never half written)."""
        tmp = osp.join(self.work_dir, f'.{LOCK_NAME}.{self._token}.tmp')
        with open(tmp, 'w') as f:
            json.dump(self._owner(), f)
        return tmp

    def _write_new(self) -> bool:
        """Create the lock unless one exists (atomic: ``os.link`` fails on
        an existing name)."""
        tmp = self._written()
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)

    def _replace(self) -> None:
        os.replace(self._written(), self.path)

    def _say(self, message: str) -> None:
        if self._warn is not None:
            self._warn(message)
            return
        import logging

        from mmengine.logging import print_log
        print_log(message, logger='current', level=logging.WARNING)

    def acquire(self) -> 'WorkDirLock':
        """Take the lock or raise :class:`WorkDirLocked`."""
        os.makedirs(self.work_dir, exist_ok=True)
        self._token = uuid.uuid4().hex
        if self._write_new():
            return self
        with _guard(self.work_dir):
            owner = self._read()
            if owner is None:  # removed in between
                if self._write_new():
                    return self
                owner = self._read() or {}
            here = owner.get('host') == socket.gethostname()
            if owner and (not here or _alive(owner)):
                self._token = None
                where = ('' if here else
                         ' (on another host, so it cannot be checked from '
                         f'here: if that run is gone, delete {self.path})')
                raise WorkDirLocked(
                    f'work dir {self.work_dir} is in use by another run: '
                    f'{_describe(owner)}{where}. Wait for it to end, stop '
                    'it, or give this run another --work-dir (or work_dir '
                    'in the config).')
            self._replace()
        self._say(
            f'{self.path} was left by a run that is no longer running '
            f'({_describe(owner) if owner else "unreadable lock file"}); '
            'this run takes the work dir over.')
        return self

    def release(self) -> None:
        """Remove the lock if this run still holds it."""
        if self._token is None:
            return
        with _guard(self.work_dir):
            owner = self._read()
            if owner and owner.get('token') == self._token:
                os.remove(self.path)
        self._token = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
