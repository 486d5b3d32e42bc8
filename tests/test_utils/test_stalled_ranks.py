"""A stalled rank is named: two gloo ranks, one stops itself (SIGSTOP)
inside :func:`mmsakd.utils.stalled_ranks.name_stalled_ranks`; the other's
timeout error names it, its pid, the timeout and how to set it."""
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO
from tests.test_compat.test_dist_timeout import _env, _free_port

pytestmark = pytest.mark.slow

RANKS = '''
import os, signal, socket, sys
import mmsakd
import torch
from mmengine.config import Config
from mmengine.dist import init_dist
from mmsakd.utils.stalled_ranks import name_stalled_ranks
cfg = Config.fromfile('configs/_base_/default_runtime.py')
cfg.merge_from_dict({'env_cfg.dist_cfg.timeout': 3})
init_dist('pytorch', **cfg.env_cfg.dist_cfg)
rank = torch.distributed.get_rank()
print('pid', os.getpid(), socket.gethostname(), flush=True)
mode = sys.argv[1]
try:
    with name_stalled_ranks(3, period=0.5):
        torch.distributed.all_reduce(torch.ones(1))  # both ranks get here
        if rank == 1 and mode == 'stall':
            os.kill(os.getpid(), signal.SIGSTOP)
        if rank == 0 and mode == 'own-error':
            raise ValueError('a bug of rank 0 alone')
        if mode == 'own-error':
            torch.distributed.barrier()  # rank 1 waits for rank 0
        torch.distributed.all_reduce(torch.ones(1))
except Exception as error:
    print(f'{type(error).__name__}: {error}', flush=True)
'''


def _launch(mode):
    port = _free_port()
    return [
        subprocess.Popen([sys.executable, '-c', RANKS, mode],
                         cwd=REPO,
                         env={
                             **os.environ,
                             **_env(rank, 2, port)
                         },
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         text=True) for rank in (0, 1)
    ]


def _end(ranks):
    for process in ranks:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_the_error_names_the_stalled_rank():
    ranks = _launch('stall')
    try:
        out, err = ranks[0].communicate(timeout=120)
        stalled_pid = ranks[1].stdout.readline().split()[1]
    finally:
        _end(ranks)
    assert ('RuntimeError: rank 0 gave up waiting for rank 1 (pid '
            f'{stalled_pid} on host ') in out, err[-3000:]
    assert 'it stopped responding' in out
    assert 'waited env_cfg.dist_cfg.timeout=3 s' in out
    assert '--cfg-options env_cfg.dist_cfg.timeout=SECONDS' in out
    assert 'Timed out waiting' in out  # the backend's own words, kept


def test_an_error_with_every_rank_alive_is_left_as_it_is():
    ranks = _launch('own-error')
    try:
        out, err = ranks[0].communicate(timeout=120)
    finally:
        _end(ranks)
    assert 'ValueError: a bug of rank 0 alone' in out, err[-3000:]
    assert 'gave up waiting' not in out
