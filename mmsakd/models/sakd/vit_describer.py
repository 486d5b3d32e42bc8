"""Cut MMPretrain's ``VisionTransformer`` (ViT and DeiT archs) into units.

SAKD (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
arXiv 2205.02399) needs backbones it can run from any spot on. ``torch.fx``
cannot trace MMPretrain's ``VisionTransformer``: ``resize_pos_embed``
branches on the patch grid that the patch embedding computes from the
image. Described by hand instead, its units are

* ``patch_embed``: the patch embedding, the class token, the (resized)
  position embedding, ``drop_after_pos`` and ``pre_norm``, giving the token
  sequence (N, 1 + h * w, D); its boundary is ``pre_norm``'s output.
  Images whose size the patch size does not divide are refused (MMPretrain
  would drop the border pixels);
* ``layers.0`` ... ``layers.{n-1}``: one encoder layer each, tokens to
  tokens (the last one followed by ``ln1`` when ``final_norm``);
* the output: ``out_type`` applied to the last tokens (the class token,
  the raw tokens, or the mean of the patch tokens through ``ln2``), the
  backbone's output. ``out_type='featmap'`` needs the patch grid, which the
  embedding unit of the same network last saw.

Each unit runs the backbone's own modules, and the executor checks at build
time that the units in order give the backbone's forward exactly. A spot on
``backbone.layers.i`` is a token sequence (N, L, D); the policy reads the
head's input, i.e. the class token for ``out_type='cls_token'``
(MMPretrain's default) and the mean of the patch tokens for
``'avg_featmap'``: the backbone's ``out_type`` is the setting.
``DistilledVisionTransformer`` (DeiT with a distillation token) returns the
pair (class token, distillation token), no single tensor, and is refused
with a message that says so.
"""
from typing import List

import torch
from mmpretrain.models.backbones import (DistilledVisionTransformer,
                                         VisionTransformer)
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from .cutting import Unit, UnitNames, register_segment_describer


class ViTEmbedding(nn.Module):
    """The token embedding of a ``VisionTransformer``, as one unit: it
    shares the backbone's modules and parameters (the backbone is not a
    submodule) and keeps the patch grid it last saw."""

    def __init__(self, vit: VisionTransformer):
        super().__init__()
        self.patch_embed = vit.patch_embed
        self.drop_after_pos = vit.drop_after_pos
        self.pre_norm = vit.pre_norm
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.patch_resolution = tuple(vit.patch_resolution)
        self.interpolate_mode = vit.interpolate_mode
        self.num_extra_tokens = vit.num_extra_tokens
        self.patch_size = tuple(vit.patch_embed.projection.stride)
        self.grid = None

    def forward(self, x: Tensor) -> Tensor:
        if any(size % patch
               for size, patch in zip(x.shape[-2:], self.patch_size)):
            raise ValueError(
                f'images of {tuple(x.shape[-2:])} pixels: the ViT\'s patch '
                f'size {self.patch_size} does not divide them, and its patch '
                'embedding would drop the border pixels. Set '
                'model.sakd.input_shape (and the pipeline\'s crop) to a '
                'multiple of the patch size')
        batch = x.shape[0]
        x, grid = self.patch_embed(x)
        self.grid = tuple(grid)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            grid,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        return self.pre_norm(self.drop_after_pos(x))


class ViTOutput(nn.Module):
    """A ``VisionTransformer``'s ``out_type`` on its last tokens."""

    def __init__(self, vit: VisionTransformer, embedding: ViTEmbedding):
        super().__init__()
        self.out_type = vit.out_type
        self.num_extra_tokens = vit.num_extra_tokens
        if self.out_type == 'avg_featmap':
            self.ln2 = vit.ln2
        self._embedding = (embedding, )  # not a submodule

    def forward(self, x: Tensor) -> Tensor:
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patch = x[:, self.num_extra_tokens:]
        if self.out_type == 'featmap':
            grid = self._embedding[0].grid
            return patch.reshape(x.size(0), *grid, -1).permute(0, 3, 1, 2)
        return self.ln2(patch.mean(dim=1))


@register_segment_describer(VisionTransformer)
def describe_vision_transformer(vit: VisionTransformer) -> List[UnitNames]:
    """The units of a ``VisionTransformer`` (see the module docstring)."""
    last = len(vit.layers) - 1
    if list(vit.out_indices) != [last]:
        raise NotImplementedError(
            f'{type(vit).__name__} with out_indices={list(vit.out_indices)} '
            'returns several layers; SAKD cuts a ViT whose backbone returns '
            'its last layer (out_indices=-1)')
    embedding = ViTEmbedding(vit)
    units: List[UnitNames] = [Unit(embedding, 'pre_norm')]
    for i in range(last + 1):
        if i == last and vit.final_norm:
            units.append((f'layers.{i}', 'ln1'))
        else:
            units.append(f'layers.{i}')
    units.append(Unit(ViTOutput(vit, embedding), ''))
    return units


@register_segment_describer(DistilledVisionTransformer)
def describe_distilled_vision_transformer(
        vit: DistilledVisionTransformer) -> List[UnitNames]:
    """Refused: the backbone returns (class token, distillation token)."""
    raise NotImplementedError(
        f'{type(vit).__name__} (DeiT with a distillation token) returns the '
        'pair (class token, distillation token) to its head, and SAKD needs '
        'one tensor at every boundary; distil a VisionTransformer with a '
        "DeiT arch (e.g. arch='deit-tiny') instead")
