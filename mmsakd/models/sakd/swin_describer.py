"""Cut MMPretrain's ``SwinTransformer`` into units.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) needs backbones it can run from any spot on. ``torch.fx``
cannot trace MMPretrain's ``SwinTransformer``: the token grid
(``hw_shape``) travels from stage to stage beside the tokens and is
unpacked (``view(-1, *hw_shape, C)``). Described by hand, the units are

* the embedding: ``patch_embed``, the absolute position embedding (when
  used) and ``drop_after_pos``; its boundary is ``drop_after_pos``'s output;
* one unit per stage: the patch merging of the previous stage (MMPretrain
  runs it after the stage, ``out_after_downsample=False``), then the
  stage's blocks; its boundary is the last block's output, the tokens
  (N, h * w, C) a recorder on ``backbone.stages.i`` (``data_idx=0``)
  records;
* the output: the last stage's norm and the tokens folded to the map
  (N, C, h, w), the backbone's output.

The grid is the side value: each unit keeps the grid its output lies on,
and the next unit reads it (it depends on the image size alone, so every
pass of a step sees the same grids). The units run the backbone's own
modules, and the executor checks at build time that, in order, they give
the backbone's forward exactly.
"""
from typing import List, Optional

from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from .cutting import Unit, UnitNames, register_segment_describer


class SwinEmbedding(nn.Module):
    """Patch and position embedding of a ``SwinTransformer`` as one unit."""

    def __init__(self, swin: SwinTransformer):
        super().__init__()
        self.patch_embed = swin.patch_embed
        self.drop_after_pos = swin.drop_after_pos
        self.absolute_pos_embed = (
            swin.absolute_pos_embed if swin.use_abs_pos_embed else None)
        self.patch_resolution = tuple(swin.patch_resolution)
        self.interpolate_mode = swin.interpolate_mode
        self.num_extra_tokens = swin.num_extra_tokens
        self.grid = None

    def forward(self, x: Tensor) -> Tensor:
        x, grid = self.patch_embed(x)
        self.grid = tuple(grid)
        if self.absolute_pos_embed is not None:
            x = x + resize_pos_embed(
                self.absolute_pos_embed, self.patch_resolution, grid,
                self.interpolate_mode, self.num_extra_tokens)
        return self.drop_after_pos(x)


class SwinStage(nn.Module):
    """The previous stage's patch merging (if any), then a stage's blocks,
    on the grid the previous unit left."""

    def __init__(self, blocks: nn.ModuleList, merge: Optional[nn.Module],
                 previous: nn.Module):
        super().__init__()
        self.blocks = blocks
        self.merge = merge
        self._previous = (previous, )  # not a submodule
        self.grid = None

    def forward(self, x: Tensor) -> Tensor:
        grid = self._previous[0].grid
        if self.merge is not None:
            x, grid = self.merge(x, grid)
        for block in self.blocks:
            x = block(x, grid)
        self.grid = tuple(grid)
        return x


class SwinOutput(nn.Module):
    """The last stage's norm, and its tokens folded to a map."""

    def __init__(self, norm: nn.Module, channels: int, previous: nn.Module):
        super().__init__()
        self.norm = norm
        self.channels = channels
        self._previous = (previous, )

    def forward(self, x: Tensor) -> Tensor:
        grid = self._previous[0].grid
        return self.norm(x).view(-1, *grid,
                                 self.channels).permute(0, 3, 1,
                                                        2).contiguous()


@register_segment_describer(SwinTransformer)
def describe_swin_transformer(swin: SwinTransformer) -> List[UnitNames]:
    """The units of a ``SwinTransformer`` (see the module docstring)."""
    last = len(swin.stages) - 1
    if list(swin.out_indices) != [last]:
        raise NotImplementedError(
            f'{type(swin).__name__} with out_indices={list(swin.out_indices)}'
            ' returns several stages; SAKD cuts a Swin whose backbone returns '
            f'its last stage (out_indices=({last}, ))')
    if swin.out_after_downsample:
        raise NotImplementedError(
            f'{type(swin).__name__} with out_after_downsample=True; SAKD '
            'cuts the default layout (out_after_downsample=False)')
    embedding = SwinEmbedding(swin)
    units: List[UnitNames] = [Unit(embedding, 'drop_after_pos')]
    previous, merge = embedding, None
    for i, stage in enumerate(swin.stages):
        unit = SwinStage(stage.blocks, merge, previous)
        units.append(Unit(unit, f'stages.{i}.blocks.{len(stage.blocks) - 1}'))
        previous, merge = unit, stage.downsample
    units.append(
        Unit(
            SwinOutput(
                getattr(swin, f'norm{last}'), swin.num_features[last],
                previous), ''))
    return units
