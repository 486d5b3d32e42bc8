"""Small helpers shared by the segment cutting, the executors, the spot
table and the routing pass of SAKD (Song et al., "Spot-adaptive Knowledge
Distillation", IEEE TIP 2022, arXiv 2205.02399)."""
from contextlib import contextmanager
from typing import Iterator

from mmcv.cnn.bricks.drop import DropPath
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

#: Layers whose train-mode output is random: PyTorch's dropout family,
#: MMCV's drop path (used by MMPretrain's models) and torchvision's.
RANDOM_LAYERS = (nn.modules.dropout._DropoutNd, DropPath, StochasticDepth)


def last_output(value):
    """The last element of a tuple/list output (MMPretrain backbones and
    necks return tuples), else the value itself."""
    if isinstance(value, (tuple, list)) and len(value) > 0:
        return value[-1]
    return value


def train_mode_matters(module: nn.Module) -> bool:
    """Whether ``module`` is in train mode and that changes what a pass
    through it does: a BatchNorm layer (batch statistics, and its running
    statistics updated) or a dropout or drop-path layer
    (:data:`RANDOM_LAYERS`: a random output). A pass through such a module
    can neither be reused nor replaced by an equivalent one."""
    return module.training and isinstance(
        module, (nn.modules.batchnorm._BatchNorm, *RANDOM_LAYERS))


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode inside the block; restore every
    submodule's own train/eval flag afterwards, also on error."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def same_tensor(a, b: Tensor) -> bool:
    """``a`` is ``b`` or a view of the same elements (e.g. a reshape)."""
    if a is b:
        return True
    return (isinstance(a, Tensor) and a.numel() == b.numel() and
            a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            and a.storage_offset() == b.storage_offset())
