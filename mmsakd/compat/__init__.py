"""Compatibility layer that lets stock MMRazor run on the current torch stack.

Each patch is small, documented in its own module with the upstream issue it
works around, idempotent, and a no-op where it is not needed:

* :mod:`.mmrazor_torch2` -- ``mmrazor.models`` imports on torch >= 2.0;
* :mod:`.checkpoint` -- Runner checkpoints (resume, ``load_from``,
  ``teacher_ckpt``) load with ``weights_only=True`` through an allow-list,
  passed explicitly so that no environment variable can turn it off;
* :mod:`.strict_checkpoint` -- ``teacher_ckpt`` loads strictly (a
  mismatching teacher fails before training, naming the key);
* :mod:`.atomic_checkpoint` -- checkpoints are written atomically and
  ``--resume auto`` skips a truncated last checkpoint;
* :mod:`.connector_init` -- distillation connectors get their ``init_cfg``
  (the FT configs' pre-trained paraphraser);
* :mod:`.dist` -- DDP on machines without CUDA (gloo, no ``device_ids``);
* :mod:`.config_paths` -- ``mmsakd::`` config paths.

:func:`apply_compat_patches` runs when :mod:`mmsakd` is imported.
"""
from .atomic_checkpoint import (RUN_CHECKPOINT, checkpoint_is_intact,
                                newest_intact_checkpoint, not_a_regular_file,
                                patch_atomic_checkpoints)
from .checkpoint import (CheckpointLoadError,
                         allow_mmengine_checkpoint_globals, restricted_getattr,
                         use_weights_only_loader)
from .config_paths import register_config_package
from .connector_init import patch_connector_init
from .dist import patch_cpu_distributed
from .mmrazor_torch2 import patch_mmrazor_quantization_imports
from .strict_checkpoint import (check_checkpoint_fits,
                                patch_strict_teacher_loading)

__all__ = [
    'apply_compat_patches', 'allow_mmengine_checkpoint_globals',
    'CheckpointLoadError', 'restricted_getattr', 'use_weights_only_loader',
    'register_config_package', 'patch_cpu_distributed',
    'patch_mmrazor_quantization_imports', 'check_checkpoint_fits',
    'patch_strict_teacher_loading', 'checkpoint_is_intact',
    'newest_intact_checkpoint', 'patch_atomic_checkpoints',
    'not_a_regular_file', 'RUN_CHECKPOINT', 'patch_connector_init'
]


def apply_compat_patches() -> dict:
    """Apply every patch; return ``{patch: what it changed}``."""
    return dict(
        mmrazor_torch2=patch_mmrazor_quantization_imports(),
        checkpoint=allow_mmengine_checkpoint_globals(),
        weights_only_loader=use_weights_only_loader(),
        strict_teacher=patch_strict_teacher_loading(),
        atomic_checkpoint=patch_atomic_checkpoints(),
        connector_init=patch_connector_init(),
        dist=patch_cpu_distributed(),
        config_paths=register_config_package())
