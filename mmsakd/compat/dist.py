"""Distributed training on machines without CUDA (gloo, CPU tensors).

mmengine 0.10.7 assumes a GPU per process when it starts distributed training:

* ``mmengine.dist.utils._init_dist_pytorch`` / ``_init_dist_slurm`` /
  ``_init_dist_mpi`` call ``torch.cuda.set_device(local_rank)``
  unconditionally, which raises ``RuntimeError: Found no NVIDIA driver on your
  system`` on a CPU machine;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
  ``MMDistributedDataParallel``, which torch rejects for a CPU module
  (``device_ids and output_device arguments only work with single-device/
  multiple-device GPU modules``).

When CUDA is not available, the patched initialisers skip ``set_device`` and
use the ``gloo`` backend (``nccl`` needs CUDA; a warning names the switch), and
the wrapper drops ``device_ids`` for modules whose parameters live on the CPU.
With CUDA present, both behave exactly as upstream.
"""
import functools
import warnings

import torch

_PATCHED_ATTR = '_mmsakd_cpu_dist_patched'


def _cpu_backend(backend: str) -> str:
    if backend in (None, 'nccl'):
        if backend == 'nccl':
            warnings.warn(
                'env_cfg.dist_cfg.backend="nccl" needs CUDA, which is not '
                'available; mmsakd uses "gloo" instead. Set '
                'env_cfg.dist_cfg.backend="gloo" to silence this warning.')
        return 'gloo'
    return backend


def _wrap_init(original):

    @functools.wraps(original)
    def init(backend, *args, **kwargs):
        if torch.cuda.is_available():
            return original(backend, *args, **kwargs)
        backend = _cpu_backend(backend)
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda *a, **k: None  # no GPU to select
        try:
            return original(backend, *args, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    setattr(init, _PATCHED_ATTR, True)
    return init


def _wrap_ddp_init(original):

    @functools.wraps(original)
    def __init__(self, module, *args, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and kwargs.get('device_ids') is not None:
            kwargs['device_ids'] = None
        return original(self, module, *args, **kwargs)

    setattr(__init__, _PATCHED_ATTR, True)
    return __init__


def patch_cpu_distributed() -> list:
    """Apply the patches (idempotent); return the names patched."""
    from mmengine.dist import utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    patched = []
    for name in ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi'):
        fn = getattr(dist_utils, name)
        if not getattr(fn, _PATCHED_ATTR, False):
            setattr(dist_utils, name, _wrap_init(fn))
            patched.append(f'mmengine.dist.utils.{name}')
    init = MMDistributedDataParallel.__init__
    if not getattr(init, _PATCHED_ATTR, False):
        MMDistributedDataParallel.__init__ = _wrap_ddp_init(init)
        patched.append('MMDistributedDataParallel.__init__')
    return patched
