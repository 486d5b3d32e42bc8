"""Helpers shared by the tests."""
import contextlib
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_CIFAR = osp.join(
    osp.dirname(REPO), 'shared', 'data', 'cifar100-resplit')


def run_python(code: str,
               cwd: str = None,
               env: dict = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (no mmsakd imported)."""
    return subprocess.run([sys.executable, '-c', code],
                          cwd=cwd or REPO,
                          env={
                              **os.environ,
                              **(env or {})
                          },
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def run_tool(args: list,
             cwd: str = None,
             env: dict = None,
             timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a script of ``tools/`` with this interpreter."""
    cmd = args if args[0].endswith('.sh') else [sys.executable] + args
    return subprocess.run(
        cmd,
        cwd=cwd or REPO,
        env={
            **os.environ, 'PYTHON': sys.executable,
            **(env or {})
        },
        capture_output=True,
        text=True,
        timeout=timeout)


def write_fake_cifar100(root: str,
                        n_train: int = 64,
                        n_test: int = 32,
                        seed: int = 0) -> str:
    """Write a tiny CIFAR-100 in the official pickle layout under ``root``."""
    rng = np.random.default_rng(seed)
    folder = osp.join(root, 'cifar-100-python')
    os.makedirs(folder, exist_ok=True)
    for split, n in (('train', n_train), ('test', n_test)):
        entry = {
            'filenames': [f'{split}_{i}.png' for i in range(n)],
            'batch_label': split,
            'fine_labels': rng.integers(0, 100, n).tolist(),
            'coarse_labels': rng.integers(0, 20, n).tolist(),
            'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        with open(osp.join(folder, split), 'wb') as f:
            pickle.dump(entry, f)
    with open(osp.join(folder, 'meta'), 'wb') as f:
        pickle.dump(
            {
                'fine_label_names': [f'c{i}' for i in range(100)],
                'coarse_label_names': [f's{i}' for i in range(20)]
            }, f)
    return root


@contextlib.contextmanager
def within(seconds: int):
    """Fail with ``TimeoutError`` instead of hanging when the block runs
    longer than ``seconds`` (SIGALRM, so also inside a blocking ``open``)."""

    def expire(signum, frame):
        raise TimeoutError(f'still running after {seconds} s')

    handler = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, handler)
