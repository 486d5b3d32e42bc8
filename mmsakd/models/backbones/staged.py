"""Stage-wise execution shared by the CIFAR distillation backbones.

SAKD cuts teacher and student at stage boundaries and runs any contiguous
range of stages of either network (Song et al., "Spot-adaptive Knowledge
Distillation", IEEE TIP 2022, arXiv 2205.02399). Here a stage is a direct
child module, so the same boundaries are visible to MMRazor recorders as
``backbone.<stage name>``.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

StageKey = Union[int, str]


class StagedBackboneMixin:
    """Run a backbone as an ordered sequence of named child modules.

    Mix into an :class:`~mmpretrain.models.backbones.base_backbone.
    BaseBackbone` subclass (mixin first), set the class attribute
    ``stage_names`` and call :meth:`_init_stages` at the end of
    ``__init__``. Running the stages in order is the whole forward, so
    :meth:`forward_stages` over consecutive ranges reproduces
    :meth:`forward` exactly.
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

    def stage_index(self, stage: StageKey) -> int:
        """Resolve a stage name or (possibly negative) index to an index."""
        if isinstance(stage, str):
            if stage in self.stage_names:
                return self.stage_names.index(stage)
        elif (isinstance(stage, int) and not isinstance(stage, bool)
              and -self.num_stages <= stage < self.num_stages):
            return stage % self.num_stages
        raise ValueError(
            f'{type(self).__name__}: unknown stage {stage!r}; valid stages '
            f'are the names {self.stage_names} or indices '
            f'{-self.num_stages}..{self.num_stages - 1}')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run every stage; return the outputs of ``out_indices``."""
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def forward_stages(self,
                       x: Tensor,
                       start: StageKey = 0,
                       end: Optional[StageKey] = None) -> Tensor:
        """Run the stages ``start`` to ``end`` (both included).

        Args:
            x (Tensor): The input of stage ``start``: the image for stage 0,
                otherwise the output of the stage before ``start``.
            start (int | str): First stage, by index or name.
            end (int | str, optional): Last stage, by index or name.
                Defaults to None, the last stage.

        Returns:
            Tensor: The output of stage ``end``.
        """
        first = self.stage_index(start)
        last = self.num_stages - 1 if end is None else self.stage_index(end)
        if first > last:
            raise ValueError(
                f'{type(self).__name__}: start stage {start!r} comes after '
                f'end stage {end!r}; stages are {self.stage_names}')
        for name in self.stage_names[first:last + 1]:
            x = getattr(self, name)(x)
        return x

    def stage_shapes(
        self, input_shape: Sequence[int] = (3, 32, 32)
    ) -> 'OrderedDict[str, Tuple[int, ...]]':
        """Output shape (C, H, W) of every stage for one input of a shape.

        The dry run uses eval mode, so that no BN statistics change, and the
        previous train/eval flag of every submodule is restored afterwards.

        Args:
            input_shape (Sequence[int]): Input shape without batch dimension.

        Returns:
            OrderedDict: Stage name -> output shape without batch dimension.
        """
        modes = [(m, m.training) for m in self.modules()]
        param = next(self.parameters(), None)
        x = torch.zeros((1, *input_shape),
                        device=None if param is None else param.device,
                        dtype=None if param is None else param.dtype)
        shapes = OrderedDict()
        try:
            self.eval()
            with torch.no_grad():
                for name in self.stage_names:
                    x = getattr(self, name)(x)
                    shapes[name] = tuple(x.shape[1:])
        finally:
            for module, mode in modes:
                module.training = mode
        return shapes
