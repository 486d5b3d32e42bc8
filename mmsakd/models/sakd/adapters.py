"""Shape adapters between teacher and student features at a spot.

In SAKD's routing network (Song et al., "Spot-adaptive Knowledge
Distillation", IEEE TIP 2022, arXiv 2205.02399) a feature leaving one
network's segment is fed to the other network's next segment, so every spot
has an adapter each way. Feature maps use RepDistiller's ``ConvReg``
(conv -> BN -> ReLU) extended by SAKD with a transposed conv for any
upsampling; pooled vectors use a single linear layer (``LinearClassifier``).
Token sequences of transformers, which the authors' code does not pair, use
mmsakd's :class:`TokenReg` between tokens and :class:`MapToTokens` /
:class:`TokensToMap` between a CNN's map and a transformer's tokens.
"""
import math
from typing import NamedTuple, Sequence, Tuple

import torch
from torch import Tensor, nn


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _deconv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size - 1) * stride - 2 * padding + kernel


class AdapterSpec(NamedTuple):
    """What an adapter is: ``kind`` ('linear', 'tokens', 'conv', 'deconv',
    or 'map_to_tokens_' / 'tokens_to_map_' followed by the convolution's
    kind), channels, for convolutions kernel,
    stride and padding, and for token sequences the number of extra
    (class, distillation) tokens."""
    kind: str
    in_channels: int
    out_channels: int
    kernel: Tuple[int, int] = (1, 1)
    stride: int = 1
    padding: int = 0
    extra_tokens: int = 0


def token_grid(length: int) -> Tuple[int, int]:
    """``(side, extra tokens)`` of a token sequence of ``length`` tokens:
    a square grid of side x side patch tokens after 0, 1 or 2 extra tokens
    (ViT's class token, DeiT's distillation token).

    Raises:
        ValueError: When no square grid, or more than one, fits.
    """
    fits = []
    for extra in (0, 1, 2):
        side = math.isqrt(max(length - extra, 0))
        if side >= 2 and side * side == length - extra:
            fits.append((side, extra))
    if len(fits) != 1:
        raise ValueError(
            f'cannot adapt a token sequence of {length} tokens to a feature '
            'map: mmsakd reads the patch grid from the length, a square grid '
            'after 0, 1 or 2 extra tokens, and '
            f'{"none" if not fits else "several"} fit; train on square '
            'images, or pair the tokens with a token spot')
    return fits[0]


def _conv_spec(src_shape: Tuple[int, int, int],
               dst_shape: Tuple[int, int, int]) -> AdapterSpec:
    (src_c, src_h, src_w), (dst_c, dst_h, dst_w) = src_shape, dst_shape
    # the size rules look at heights only, as the reference does; the
    # widths are checked afterwards
    if src_h == 2 * dst_h:
        spec = AdapterSpec('conv', src_c, dst_c, (3, 3), 2, 1)
    elif 2 * src_h == dst_h:
        spec = AdapterSpec('deconv', src_c, dst_c, (4, 4), 2, 1)
    elif src_h >= dst_h:
        kernel = (1 + src_h - dst_h, 1 + src_w - dst_w)
        if kernel[1] < 1:
            raise ValueError(f'no adapter from {src_shape} to {dst_shape}: '
                             'the width would have to grow while the '
                             'height shrinks')
        spec = AdapterSpec('conv', src_c, dst_c, kernel)
    else:
        # SAKD's addition: the teacher->student adapter may have to upsample
        # by any factor; the kernel makes the output size exact
        stride = dst_h // src_h
        kernel = (dst_h - stride * (src_h - 1), dst_w - stride * (src_w - 1))
        if kernel[1] < 1:
            raise ValueError(f'no adapter from {src_shape} to {dst_shape}: '
                             'the width cannot be upsampled by the height '
                             f'stride {stride}')
        spec = AdapterSpec('deconv', src_c, dst_c, kernel, stride)
    size = _deconv_out if spec.kind == 'deconv' else _conv_out
    out = [
        size(s, k, spec.stride, spec.padding)
        for s, k in zip((src_h, src_w), spec.kernel)
    ]
    if out != [dst_h, dst_w]:
        raise ValueError(f'no adapter from {src_shape} to {dst_shape}: '
                         f'a {spec.kind} with kernel {spec.kernel}, stride '
                         f'{spec.stride} would give {out[0]}x{out[1]} maps')
    return spec


class ConvReg(nn.Module):
    """Conv -> BN -> ReLU from one feature-map shape to another.

    The conv depends on the heights (RepDistiller's ``ConvReg`` plus
    SAKD's last case): ``src_H == 2 dst_H``: 3x3, stride 2, padding 1;
    ``2 src_H == dst_H``: 4x4 transposed, stride 2, padding 1;
    ``src_H >= dst_H``: kernel ``(1 + src_H - dst_H, 1 + src_W - dst_W)``
    (1x1 for equal sizes); otherwise transposed with stride
    ``floor(dst_H / src_H)`` and the kernel that gives exactly the
    destination size. Conv biases and initialisation are PyTorch's
    defaults, as in the reference.

    Args:
        src_shape (Sequence[int]): Input shape (C, H, W).
        dst_shape (Sequence[int]): Output shape (C, H, W).
    """

    def __init__(self, src_shape: Sequence[int], dst_shape: Sequence[int]):
        super().__init__()
        self.src_shape = tuple(src_shape)
        self.dst_shape = tuple(dst_shape)
        spec = _conv_spec(self.src_shape, self.dst_shape)
        conv = nn.ConvTranspose2d if spec.kind == 'deconv' else nn.Conv2d
        self.conv = conv(
            spec.in_channels,
            spec.out_channels,
            kernel_size=spec.kernel,
            stride=spec.stride,
            padding=spec.padding)
        self.bn = nn.BatchNorm2d(self.dst_shape[0])
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def _as_shape(shape: Sequence[int], name: str) -> Tuple[int, ...]:
    shape = tuple(shape)
    if not shape or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1
            for s in shape):
        raise ValueError(f'{name} must be a shape of positive ints without '
                         f'the batch dimension, got {shape!r}')
    return shape


def adapter_spec(src_shape: Sequence[int],
                 dst_shape: Sequence[int]) -> AdapterSpec:
    """What :func:`build_adapter` builds, without building it.

    Raises:
        ValueError: As :func:`build_adapter`.
    """
    src = _as_shape(src_shape, 'src_shape')
    dst = _as_shape(dst_shape, 'dst_shape')
    if {len(src), len(dst)} == {2, 3}:
        # a CNN map and a transformer's tokens: a convolution to the token
        # grid (or from it), see MapToTokens / TokensToMap
        tokens = src if len(src) == 2 else dst
        side, extra = token_grid(tokens[0])
        grid = (tokens[1], side, side)
        way, conv = (('map_to_tokens',
                      _conv_spec(src, grid)) if len(src) == 3 else
                     ('tokens_to_map', _conv_spec(grid, dst)))
        return conv._replace(kind=f'{way}_{conv.kind}', extra_tokens=extra)
    if len(src) != len(dst):
        raise ValueError(f'cannot adapt features of shape {src} to {dst}: '
                         'the ranks differ; choose spots of the same kind '
                         '(feature maps or token sequences, or pooled '
                         'vectors) in both networks')
    if len(src) == 1:
        return AdapterSpec('linear', src[0], dst[0])
    if len(src) == 2:
        if src[0] != dst[0]:
            raise ValueError(
                f'cannot adapt token sequences of shape {src} to {dst}: the '
                f'numbers of tokens differ ({src[0]} and {dst[0]}); choose '
                'spots with the same tokens in both networks (the same '
                'patch grid and extra tokens, e.g. the same patch size)')
        return AdapterSpec('tokens', src[1], dst[1])
    if len(src) == 3:
        return _conv_spec(src, dst)
    raise ValueError(f'cannot adapt features of shape {src} to {dst}: only '
                     '(C, H, W) maps, (L, D) token sequences and (C,) '
                     'vectors are supported')


class TokenReg(nn.Module):
    """Adapter between token sequences (N, L, D) -> (N, L, D') of the same
    tokens: ``LayerNorm(D)`` then ``Linear(D, D')`` on every token.

    SAKD's adapters (Song et al., "Spot-adaptive Knowledge Distillation",
    IEEE TIP 2022, arXiv 2205.02399) are convolutions between feature maps;
    the authors' code has no token spots. This is mmsakd's counterpart for
    transformer blocks: the norm and projection a ViT block itself uses.
    """

    def __init__(self, in_dims: int, out_dims: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dims)
        self.proj = nn.Linear(in_dims, out_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.norm(x))


class MapToTokens(nn.Module):
    """Adapter from a CNN's map (N, C, H, W) to a transformer's tokens
    (N, e + h * w, D): :class:`ConvReg` to (D, h, w) on the token grid, the
    grid flattened to h * w tokens, the ``e`` extra tokens (class,
    distillation) made as a learned token plus the mean of the patch tokens
    and put first, then ``LayerNorm(D)``. An mmsakd addition: the authors'
    code pairs CNNs only.
    """

    def __init__(self, src_shape: Sequence[int], dst_shape: Sequence[int]):
        super().__init__()
        side, self.extra_tokens = token_grid(dst_shape[0])
        dims = dst_shape[1]
        self.conv = ConvReg(src_shape, (dims, side, side))
        self.extra = nn.Parameter(torch.zeros(1, self.extra_tokens, dims))
        self.norm = nn.LayerNorm(dims)

    def forward(self, x: Tensor) -> Tensor:
        patch = self.conv(x).flatten(2).transpose(1, 2)
        if self.extra_tokens:
            mean = patch.mean(dim=1, keepdim=True)
            extra = self.extra.expand(patch.shape[0], -1, -1) + mean
            patch = torch.cat((extra, patch), dim=1)
        return self.norm(patch)


class TokensToMap(nn.Module):
    """Adapter from a transformer's tokens (N, e + h * w, D) to a CNN's map
    (N, C, H, W): the mean of the ``e`` extra tokens added to every patch
    token, the patch tokens folded to (D, h, w), then :class:`ConvReg` to
    (C, H, W). An mmsakd addition: the authors' code pairs CNNs only.
    """

    def __init__(self, src_shape: Sequence[int], dst_shape: Sequence[int]):
        super().__init__()
        self.side, self.extra_tokens = token_grid(src_shape[0])
        self.conv = ConvReg((src_shape[1], self.side, self.side), dst_shape)

    def forward(self, x: Tensor) -> Tensor:
        # the grid of this batch's images (a size other than the dry run's
        # keeps the extra tokens and gives another square grid)
        side = math.isqrt(x.shape[1] - self.extra_tokens)
        if side * side != x.shape[1] - self.extra_tokens:
            raise ValueError(
                f'token spot of {x.shape[1]} tokens, built for '
                f'{self.extra_tokens} extra tokens and a square grid '
                f'({self.extra_tokens + self.side**2} tokens at the dry '
                'run): the tokens are no square grid now; train on square '
                'images, or set model.sakd.input_shape to their shape')
        patch = x[:, self.extra_tokens:]
        if self.extra_tokens:
            patch = patch + x[:, :self.extra_tokens].mean(dim=1, keepdim=True)
        grid = patch.transpose(1, 2).reshape(x.shape[0], -1, side, side)
        return self.conv(grid)


def build_adapter(src_shape: Sequence[int],
                  dst_shape: Sequence[int]) -> nn.Module:
    """The adapter that maps features of one shape to another.

    Args:
        src_shape (Sequence[int]): Input shape without batch: (C, H, W) for
            feature maps, (L, D) for token sequences or (C,) for vectors.
        dst_shape (Sequence[int]): Output shape, of the same rank (or a
            map for tokens and tokens for a map).

    Returns:
        nn.Module: :class:`ConvReg` for feature maps, :class:`TokenReg` for
        token sequences, :class:`MapToTokens` / :class:`TokensToMap` between
        the two, ``nn.Linear`` for vectors.

    Raises:
        ValueError: For ranks that differ or are not 1 to 3, token
            sequences of different lengths, or sizes that no rule maps
            exactly.
    """
    spec = adapter_spec(src_shape, dst_shape)
    if spec.kind == 'linear':
        return nn.Linear(spec.in_channels, spec.out_channels)
    if spec.kind == 'tokens':
        return TokenReg(spec.in_channels, spec.out_channels)
    if spec.kind.startswith('map_to_tokens'):
        return MapToTokens(src_shape, dst_shape)
    if spec.kind.startswith('tokens_to_map'):
        return TokensToMap(src_shape, dst_shape)
    return ConvReg(src_shape, dst_shape)
