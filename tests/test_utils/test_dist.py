"""A rank ends when its launcher dies; the rank is read from the launcher's
environment."""
import os
import signal
import subprocess
import sys
import time

import pytest

from mmsakd.utils import global_rank_from_env
from tests.helpers import REPO

# a launcher like torchrun: its worker runs in a session of its own
LAUNCHER = '''
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, '-c', sys.argv[1]],
                          start_new_session=True)
print(worker.pid, flush=True)
time.sleep(120)
'''
WORKER = '''
import os, sys, time
from mmsakd.utils import exit_with_launcher
{platform}
{call}
print('watching', flush=True)
time.sleep(120)
'''


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped has ended)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not running(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    'platform', ['', 'sys.platform = "darwin"'], ids=['prctl', 'thread'])
def test_a_worker_ends_when_its_launcher_is_killed(tmp_path, platform):
    worker = WORKER.format(
        platform=platform,
        call='print(exit_with_launcher(poll_s=0.2), flush=True)')
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER, worker],
                                cwd=REPO,
                                stdout=subprocess.PIPE,
                                text=True)
    pid = int(launcher.stdout.readline())
    try:
        how = launcher.stdout.readline().strip()  # '' if the worker failed
        assert how == ('thread' if platform else 'prctl')
        assert launcher.stdout.readline().strip() == 'watching'
        launcher.kill()  # SIGKILL: nothing is passed on
        launcher.wait()
        assert wait_gone(pid), 'the worker outlived its launcher'
    finally:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_without_the_watch_the_worker_is_orphaned(tmp_path):
    """The fault the watch is for: torchrun's session-per-worker layout
    keeps a worker alive after its launcher is killed."""
    worker = WORKER.format(platform='', call='')
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER, worker],
                                cwd=REPO,
                                stdout=subprocess.PIPE,
                                text=True)
    pid = int(launcher.stdout.readline())
    try:
        assert launcher.stdout.readline().strip() == 'watching'
        launcher.kill()
        launcher.wait()
        assert not wait_gone(pid, timeout=2)
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize('env, rank', [
    ({}, 0),
    ({
        'RANK': '3'
    }, 3),
    ({
        'SLURM_PROCID': '5'
    }, 5),
    ({
        'OMPI_COMM_WORLD_RANK': '1'
    }, 1),
])
def test_the_global_rank_comes_from_the_launcher(monkeypatch, env, rank):
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert global_rank_from_env() == rank
