"""Start and clean end of a distributed run."""
import os
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
