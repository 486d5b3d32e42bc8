"""Name the rank that stalled a distributed job.

When one rank stops (``SIGSTOP``, a process swapped out for good, a frozen
node), the others wait in their next collective for
``env_cfg.dist_cfg.timeout`` seconds, then fail with the backend's error,
which names no rank: gloo's is ``Timed out waiting 600000ms for recv
operation to complete`` on every waiting rank, and a launcher such as
torchrun then reports the first rank that failed, i.e. a healthy one. After
such a timeout the process group cannot be asked who is missing (gloo closes
its pairs, so ``monitored_barrier`` fails at once).

The rendezvous store (mmengine's ``init_dist`` creates it; with torchrun it
lives in the launcher) still works, so each rank keeps a heartbeat there:
a daemon thread counts up a key of its own every ``period`` seconds. A
stopped process stops all its threads, its count stands still. When the
training loop fails, :func:`name_stalled_ranks` reads every count twice,
``2 * period`` apart, and re-raises the error with the ranks whose count did
not move (their pid and host, the timeout and how to set it); when every
rank is alive, the error is re-raised unchanged. Counts, not clocks: the
hosts' clocks need not agree.
"""
import contextlib
import datetime
import json
import os
import socket
import threading
import time
from typing import Dict, Iterator, List, Optional

import torch.distributed as torch_dist

_KEY = 'mmsakd/heartbeat/{}'


def _store():
    from torch.distributed import distributed_c10d
    return distributed_c10d._get_default_store()


class RankHeartbeat:
    """Count up this rank's heartbeat key in the rendezvous store.

    Args:
        period (float): Seconds between beats. Defaults to 2.
    """

    def __init__(self, period: float = 2.0) -> None:
        self.period = period
        self.rank = torch_dist.get_rank()
        self._store = _store()
        self._stop = threading.Event()
        self._beats = 0
        self._who = dict(pid=os.getpid(), host=socket.gethostname())
        self._beat()  # the key exists before anyone reads it
        self._thread = threading.Thread(
            target=self._run, name='mmsakd-heartbeat', daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self._beats += 1
        self._store.set(
            _KEY.format(self.rank),
            json.dumps({
                **self._who, 'beats': self._beats
            }))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._beat()
            except Exception:  # the store went away: the job is ending
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.period + 1)


def read_heartbeats(world_size: int,
                    wait: float = 5.0) -> Dict[int, Optional[dict]]:
    """Every rank's last heartbeat (None where it cannot be read within
    ``wait`` seconds)."""
    store = _store()
    timeout = store.timeout
    store.set_timeout(datetime.timedelta(seconds=wait))
    beats = {}
    try:
        for rank in range(world_size):
            try:
                beats[rank] = json.loads(store.get(_KEY.format(rank)))
            except Exception:
                beats[rank] = None
    finally:
        store.set_timeout(timeout)
    return beats


def stalled_ranks(period: float = 2.0) -> Dict[int, Optional[dict]]:
    """The ranks whose heartbeat stands still over ``2 * period`` seconds,
    with their last heartbeat (pid, host)."""
    world_size = torch_dist.get_world_size()
    before = read_heartbeats(world_size)
    time.sleep(2 * period)
    after = read_heartbeats(world_size)
    return {
        rank: after[rank] or before[rank]
        for rank in range(world_size)
        if after[rank] is None or before[rank] is None
        or after[rank]['beats'] == before[rank]['beats']
    }


def _describe(stalled: Dict[int, Optional[dict]]) -> List[str]:
    return [
        f'rank {rank}' +
        (f' (pid {who["pid"]} on host {who["host"]})' if who else '')
        for rank, who in stalled.items()
    ]


@contextlib.contextmanager
def name_stalled_ranks(timeout_s: Optional[float],
                       period: float = 2.0) -> Iterator[None]:
    """Run the block with a heartbeat; if it fails in a distributed run,
    re-raise naming the ranks that stopped responding.

    Args:
        timeout_s (float, optional): The process group's timeout
            (``env_cfg.dist_cfg.timeout``), for the message.
        period (float): Seconds between heartbeats.

    A no-op outside distributed runs.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()
            and torch_dist.get_world_size() > 1):
        yield
        return
    heartbeat = RankHeartbeat(period)
    try:
        yield
    except Exception as error:
        try:
            stalled = stalled_ranks(period)
        except Exception:  # no store to ask: keep the original error
            stalled = {}
        stalled.pop(heartbeat.rank, None)
        if not stalled:
            raise
        waited = (f'env_cfg.dist_cfg.timeout={timeout_s:g} s'
                  if timeout_s is not None else 'the process group timeout')
        raise RuntimeError(
            f'rank {heartbeat.rank} gave up waiting for '
            f'{", ".join(_describe(stalled))}: it stopped responding (a '
            'stopped or frozen process, a lost node) or it ended, and the '
            f'other ranks waited {waited} for it in a collective. Look at '
            'that process (its own log, whether it is stopped); to let '
            'ranks wait longer or shorter, set --cfg-options '
            'env_cfg.dist_cfg.timeout=SECONDS. The backend said: '
            f'{type(error).__name__}: {error}') from error
    finally:
        heartbeat.stop()
