"""Compatibility layer that lets stock MMRazor run on the current torch stack.

Each patch is small, documented in its own module with the upstream issue it
works around, idempotent, and a no-op where it is not needed:

* :mod:`.mmrazor_torch2` -- ``mmrazor.models`` imports on torch >= 2.0;
* :mod:`.checkpoint` -- Runner checkpoints (resume, ``load_from``,
  ``teacher_ckpt``) load with ``weights_only=True`` through an allow-list;
* :mod:`.dist` -- DDP on machines without CUDA (gloo, no ``device_ids``);
* :mod:`.config_paths` -- ``mmsakd::`` config paths.

:func:`apply_compat_patches` runs when :mod:`mmsakd` is imported.
"""
from .checkpoint import allow_mmengine_checkpoint_globals, restricted_getattr
from .config_paths import register_config_package
from .dist import patch_cpu_distributed
from .mmrazor_torch2 import patch_mmrazor_quantization_imports

__all__ = [
    'apply_compat_patches', 'allow_mmengine_checkpoint_globals',
    'restricted_getattr', 'register_config_package', 'patch_cpu_distributed',
    'patch_mmrazor_quantization_imports'
]


def apply_compat_patches() -> dict:
    """Apply every patch; return ``{patch: what it changed}``."""
    return dict(
        mmrazor_torch2=patch_mmrazor_quantization_imports(),
        checkpoint=allow_mmengine_checkpoint_globals(),
        dist=patch_cpu_distributed(),
        config_paths=register_config_package())
