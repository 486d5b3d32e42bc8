"""Stage-wise execution shared by the CIFAR distillation backbones.

SAKD cuts teacher and student at stage boundaries and runs any contiguous
range of stages of either network (Song et al., "Spot-adaptive Knowledge
Distillation", IEEE TIP 2022, arXiv 2205.02399). Here a stage is a direct
child module, so the same boundaries are visible to MMRazor recorders as
``backbone.<stage name>``.
"""
from typing import Sequence, Tuple

from torch import Tensor


class StagedBackboneMixin:
    """Run a backbone as an ordered sequence of named child modules.

    Mix into an :class:`~mmpretrain.models.backbones.base_backbone.
    BaseBackbone` subclass (mixin first), set the class attribute
    ``stage_names`` and call :meth:`_init_stages` at the end of
    ``__init__``. Running the stages in order is the whole forward, so
    SAKD's segment executor can cut the backbone after any stage.
    """

    stage_names: Tuple[str, ...] = ()
    out_indices: Tuple[int, ...]

    def _init_stages(self, out_indices: Sequence[int]) -> None:
        """Check ``stage_names`` and set ``out_indices`` (in stage order)."""
        cls = type(self).__name__
        children = dict(self.named_children())
        missing = [n for n in self.stage_names if n not in children]
        if not self.stage_names or missing:
            raise TypeError(f'{cls}.stage_names must name direct child '
                            f'modules; not children: {missing}')
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        indices = []
        for index in out_indices:
            if (isinstance(index, bool) or not isinstance(index, int)
                    or not -self.num_stages <= index < self.num_stages):
                raise ValueError(
                    f'{cls}: out_indices must be ints in '
                    f'[{-self.num_stages}, {self.num_stages - 1}] (stages '
                    f'{self.stage_names}), got {tuple(out_indices)!r}')
            indices.append(index % self.num_stages)
        if not indices:
            raise ValueError(f'{cls}: out_indices must not be empty')
        self.out_indices = tuple(sorted(set(indices)))

    def train(self, mode: bool = True):
        # BaseBackbone.train returns None; nn.Module's contract (and
        # ``model.eval()`` chaining) needs the module back
        super().train(mode)
        return self

    @property
    def num_stages(self) -> int:
        """int: Number of stages."""
        return len(self.stage_names)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run every stage; return the outputs of ``out_indices``."""
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
