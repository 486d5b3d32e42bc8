"""The default distributed timeout of configs/_base_/default_runtime.py
reaches the process group (through mmengine's init_dist and mmsakd's
CPU/gloo wrapper), and a stalled rank fails the job after it."""
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, run_python

pytestmark = pytest.mark.slow

# start distributed training exactly as the Runner does, with the config's
# env_cfg.dist_cfg (and a --cfg-options style override when given)
START = '''
import sys, time
import mmsakd
import torch
from mmengine.config import Config
from mmengine.dist import init_dist
from torch.distributed import distributed_c10d as c10d
cfg = Config.fromfile('configs/_base_/default_runtime.py')
if len(sys.argv) > 1:
    cfg.merge_from_dict({'env_cfg.dist_cfg.timeout': int(sys.argv[1])})
init_dist('pytorch', **cfg.env_cfg.dist_cfg)
backend = c10d._get_default_group()._get_backend(torch.device('cpu'))
print('timeout', backend.options._timeout.total_seconds(), flush=True)
'''

STALL = START + '''
if torch.distributed.get_rank() == 1:
    time.sleep(60)  # a stalled rank
else:
    start = time.time()
    try:
        torch.distributed.all_reduce(torch.ones(1))
    except Exception as error:
        print(f'failed after {time.time() - start:.1f} s: '
              f'{type(error).__name__}', flush=True)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(rank=0, world=1, port=None):
    return dict(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port or _free_port()))


def test_the_default_timeout_reaches_the_process_group():
    result = run_python(START, env=_env())
    assert result.returncode == 0, result.stderr
    assert 'timeout 600.0' in result.stdout


def test_the_timeout_can_be_overridden():
    result = subprocess.run([sys.executable, '-c', START, '45'],
                            cwd=REPO,
                            env={
                                **os.environ,
                                **_env()
                            },
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'timeout 45.0' in result.stdout


def test_a_stalled_rank_fails_the_collective_after_the_timeout():
    port = _free_port()
    ranks = [
        subprocess.Popen([sys.executable, '-c', STALL, '3'],
                         cwd=REPO,
                         env={
                             **os.environ,
                             **_env(rank, 2, port)
                         },
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         text=True) for rank in (0, 1)
    ]
    try:
        start = time.time()
        out, err = ranks[0].communicate(timeout=120)
        assert 'timeout 3.0' in out, err
        # rank 0 gave up after ~3 s, not after torch's 30 minutes
        assert 'failed after' in out, err
        waited = float(out.split('failed after ')[1].split(' s')[0])
        assert 2.5 <= waited < 20
        assert time.time() - start < 100
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.communicate()
