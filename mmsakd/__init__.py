"""mmsakd: spot-adaptive knowledge distillation (SAKD) for MMRazor.

Song, Chen, Ye & Song, "Spot-adaptive Knowledge Distillation", IEEE TIP 31,
2022 (arXiv 2205.02399).

Importing the package first applies :mod:`mmsakd.compat` (stock MMRazor on the
current torch stack), then registers MMRazor's and mmsakd's components.
"""
from .compat import apply_compat_patches

COMPAT_PATCHES = apply_compat_patches()

# MMRazor registers its components only when these are imported; they need the
# patches above, so they are imported here, not lazily by a registry lookup.
import mmrazor.engine  # noqa: E402,F401
import mmrazor.models  # noqa: E402,F401

from . import datasets, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'COMPAT_PATCHES']
