"""Start and clean end of a distributed run."""
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Optional

import torch.distributed as torch_dist

# what each launcher's process group setup reads from the environment
LAUNCHER_ENV = dict(
    pytorch=('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    mpi=('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'))
LAUNCHER_HOW = dict(
    pytorch='bash tools/dist_train.sh CONFIG NUM_PROCESSES (or torchrun '
    '--nproc_per_node=N tools/train.py CONFIG --launcher pytorch)',
    slurm='bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR (srun)',
    mpi='mpirun -np N python tools/train.py CONFIG --launcher mpi')
# the global rank each launcher hands its processes
RANK_ENV = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK')
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def global_rank_from_env() -> int:
    """This process's global rank, read from its launcher's environment
    (0 for a process no launcher started), before any process group
    exists."""
    for name in RANK_ENV:
        if os.environ.get(name, '').isdigit():
            return int(os.environ[name])
    return 0


def exit_with_launcher(poll_s: float = 1.0) -> str:
    """End this process when the launcher that started it dies.

    torchrun starts each worker in a session of its own, so killing the
    launcher or its process group (``kill -9``, a closed terminal, a
    scheduler's ``killpg``) takes only the launcher down: the ranks went on
    training and writing into the work dir on their own. A rank started by
    torchrun calls this first thing: on Linux the kernel sends the rank
    ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere
    a daemon thread checks every ``poll_s`` seconds whether the parent is
    gone. A parent that died before the call ends the process at once.
    (A SIGTERM of the launcher alone needs none of this: torchrun passes it
    on to its workers.)

    Returns:
        str: How the parent is watched: ``'prctl'`` or ``'thread'``.
    """
    parent = os.getppid()
    how = 'thread'
    if sys.platform.startswith('linux'):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                how = 'prctl'
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent or parent == 1:  # died before the watch
        os._exit(1)
    if how == 'thread':

        def watch():
            while os.getppid() == parent:
                time.sleep(poll_s)
            os._exit(1)

        threading.Thread(
            target=watch, name='exit-with-launcher', daemon=True).start()
    return how


def launcher_problem(launcher: str) -> Optional[str]:
    """Why ``--launcher`` cannot start here, or None.

    MMEngine reads the launcher's environment variables directly and fails
    with ``KeyError: 'RANK'`` when the script was not started by it.
    """
    missing = [
        name for name in LAUNCHER_ENV.get(launcher, ())
        if name not in os.environ
    ]
    if not missing:
        return None
    return (f'--launcher {launcher} needs the environment its launcher sets '
            f'({", ".join(missing)} missing): start the job with '
            f'{LAUNCHER_HOW[launcher]}, or drop --launcher for a single '
            'process.')


def teardown_dist() -> None:
    """Wait for every rank, then destroy the default process group.

    MMEngine never destroys the process group it creates. With the gloo
    backend a rank that exits first, while another rank still writes a
    checkpoint, can abort in gloo's background threads ("terminate called
    without an active exception") and take the whole job down; the barrier
    lets the ranks leave together. A no-op outside distributed runs.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
