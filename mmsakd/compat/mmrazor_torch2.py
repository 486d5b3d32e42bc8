"""Let ``mmrazor.models`` import on torch >= 2.0.

mmrazor 1.0.0 (its last release) builds quantization backend tables at import
time from torch internals that torch 2.0 renamed or removed, so
``import mmrazor.models`` dies with the misleading
``ImportError: `torch>=1.13` is not installed properly`` (upstream issues
open-mmlab/mmrazor#615, #632, #652). Distillation never uses those tables.

The patch restores the renamed names under their old spelling and gives the
removed ``BackendPatternConfig`` setters no-op bodies. It must run before
anything imports ``mmrazor.models``, ``mmrazor.engine`` or
``mmrazor.structures``; :mod:`mmsakd` applies it on import. On torch versions
that still have the old names it changes nothing.

Caveat: mmrazor's *quantization* (PTQ/QAT) tables differ slightly from the ones
torch 1.13 would give; quantization with mmrazor on torch 2.x is unsupported.
"""

# (name mmrazor imports, name in torch >= 2.0)
_RENAMED_FUSER_HELPERS = (('reverse2', '_reverse2'), ('reverse3', '_reverse3'),
                          ('reverse_sequential_wrapper2',
                           '_sequential_wrapper2'))
# setters removed in torch 2.0; only mmrazor's quantization tables call them
_REMOVED_PATTERN_SETTERS = ('_set_overwrite_output_fake_quantize',
                            '_set_overwrite_output_observer',
                            '_set_input_output_observed')


def _return_self(self, *args, **kwargs):
    return self


def patch_mmrazor_quantization_imports() -> list:
    """Apply the patch; return the names it added (empty when not needed)."""
    try:
        import torch.ao.quantization.backend_config.utils  # noqa: F401
        import torch.ao.quantization.fuser_method_mappings as fmm
        from torch.ao.quantization.backend_config import BackendPatternConfig
    except ImportError:  # a torch without torch.ao: nothing to patch
        return []
    added = []
    for old, new in _RENAMED_FUSER_HELPERS:
        if not hasattr(fmm, old) and hasattr(fmm, new):
            setattr(fmm, old, getattr(fmm, new))
            added.append(f'fuser_method_mappings.{old}')
    for name in _REMOVED_PATTERN_SETTERS:
        if not hasattr(BackendPatternConfig, name):
            setattr(BackendPatternConfig, name, _return_self)
            added.append(f'BackendPatternConfig.{name}')
    return added
