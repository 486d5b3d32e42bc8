"""One run per work dir: the lock file, its stale takeover and the refusal
of a second live run."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from mmsakd.utils import WorkDirLock, WorkDirLocked
from mmsakd.utils.run_lock import LOCK_NAME


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def _write_lock(work_dir, **owner):
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, LOCK_NAME), 'w') as f:
        json.dump(owner, f)


def test_the_lock_names_its_owner_and_goes_at_the_end(tmp_path):
    work_dir = str(tmp_path / 'run')
    with WorkDirLock(work_dir):
        with open(osp.join(work_dir, LOCK_NAME)) as f:
            owner = json.load(f)
        assert owner['pid'] == os.getpid()
        assert owner['host'] == socket.gethostname()
    assert os.listdir(work_dir) == []  # nothing left, no temporary file


def test_the_lock_goes_when_the_run_fails(tmp_path):
    with pytest.raises(KeyError):
        with WorkDirLock(str(tmp_path)):
            raise KeyError('a failed build')
    assert not osp.exists(tmp_path / LOCK_NAME)


def test_a_second_live_run_is_refused(tmp_path):
    # the other run: a live process of this host
    other = subprocess.Popen(
        [sys.executable, '-c', 'import time; '
         'time.sleep(60)'])
    try:
        _write_lock(
            str(tmp_path),
            pid=other.pid,
            host=socket.gethostname(),
            command='python tools/train.py other.py')
        with pytest.raises(WorkDirLocked) as error:
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        other.kill()
        other.wait()
    message = str(error.value)
    assert f'work dir {tmp_path} is in use' in message
    assert f'pid {other.pid}' in message
    assert 'python tools/train.py other.py' in message
    assert '--work-dir' in message
    # the other run's lock is left as it was
    with open(tmp_path / LOCK_NAME) as f:
        assert json.load(f)['pid'] == other.pid


def test_this_process_holding_the_lock_refuses_a_second_one(tmp_path):
    with WorkDirLock(str(tmp_path)):
        with pytest.raises(WorkDirLocked):
            WorkDirLock(str(tmp_path)).acquire()
        assert osp.exists(tmp_path / LOCK_NAME)  # still held
    assert not osp.exists(tmp_path / LOCK_NAME)


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    dead = _dead_pid()
    _write_lock(
        str(tmp_path),
        pid=dead,
        host=socket.gethostname(),
        command='python tools/train.py killed.py')
    said = []
    with WorkDirLock(str(tmp_path), warn=said.append):
        with open(tmp_path / LOCK_NAME) as f:
            assert json.load(f)['pid'] == os.getpid()
    assert len(said) == 1
    assert f'pid {dead}' in said[0] and 'no longer running' in said[0]
    assert 'killed.py' in said[0]


def test_a_reused_pid_is_told_apart_by_its_start_time(tmp_path):
    if not osp.exists(f'/proc/{os.getpid()}/stat'):
        pytest.skip('needs /proc')
    # this very process, but "started" at another time: a pid reused
    _write_lock(
        str(tmp_path),
        pid=os.getpid(),
        host=socket.gethostname(),
        start_time='1')
    said = []
    with WorkDirLock(str(tmp_path), warn=said.append):
        pass
    assert said


def test_a_lock_cut_short_is_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text('{"pid": 12')
    said = []
    with WorkDirLock(str(tmp_path), warn=said.append):
        pass
    assert said and 'unreadable' in said[0]


def test_a_lock_of_another_host_says_how_to_clear_it(tmp_path):
    _write_lock(str(tmp_path), pid=_dead_pid(), host='node-that-is-not-here')
    with pytest.raises(WorkDirLocked) as error:
        WorkDirLock(str(tmp_path)).acquire()
    assert 'node-that-is-not-here' in str(error.value)
    assert f'delete {tmp_path / LOCK_NAME}' in str(error.value)


RACE = '''
import os, sys, time
from mmsakd.utils import WorkDirLock, WorkDirLocked
# both past their imports, then both at once
open(os.path.join(sys.argv[2], sys.argv[3]), 'w').close()
while len(os.listdir(sys.argv[2])) < 2:
    time.sleep(0.001)
try:
    WorkDirLock(sys.argv[1]).acquire()
    print('took it', flush=True)
    time.sleep(5)
except WorkDirLocked:
    print('refused', flush=True)
'''


def test_of_two_runs_starting_at_once_one_gets_the_lock(tmp_path):
    work_dir, ready = tmp_path / 'run', tmp_path / 'ready'
    ready.mkdir()
    runs = [
        subprocess.Popen(
            [sys.executable, '-c', RACE,
             str(work_dir),
             str(ready),
             str(i)],
            stdout=subprocess.PIPE,
            text=True) for i in range(2)
    ]
    outs = sorted(run.communicate(timeout=120)[0].strip() for run in runs)
    assert outs == ['refused', 'took it']
