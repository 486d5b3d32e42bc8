"""Clean end of a distributed run."""
import torch.distributed as torch_dist


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
