"""Which classification backbones SAKD can cut into segments automatically.

Every backbone of the table is built in an MMPretrain ``ImageClassifier``;
those marked ``True`` must be cut (the executor's own dry run checks every
boundary against the model's forward) and, resumed from any boundary, give
the model's logits bit for bit; the others must be refused at build time
with a message that says why and how to register a describer."""
import pytest
import torch
from mmengine.registry import DefaultScope

from mmsakd.models.sakd import SegmentExecutor
from mmsakd.registry import MODELS

# name -> (backbone config, head input channels, neck?, image size, cut?
# (True, False: refused as untraceable, or the verification's message))
TABLE = {
    # the ResNet family
    'ResNet-18': (dict(type='mmpretrain.ResNet',
                       depth=18), 512, True, 64, True),
    'ResNetV1c-18': (dict(type='mmpretrain.ResNetV1c',
                          depth=18), 512, True, 64, True),
    'ResNetV1d-18': (dict(type='mmpretrain.ResNetV1d',
                          depth=18), 512, True, 64, True),
    'ResNeXt-50': (dict(type='mmpretrain.ResNeXt',
                        depth=50), 2048, True, 64, True),
    'SEResNet-50': (dict(type='mmpretrain.SEResNet',
                         depth=50), 2048, True, 64, True),
    'SEResNeXt-50': (dict(type='mmpretrain.SEResNeXt',
                          depth=50), 2048, True, 64, True),
    'Res2Net-50': (dict(type='mmpretrain.Res2Net',
                        depth=50), 2048, True, 64, True),
    'ResNet_CIFAR-18': (dict(type='mmpretrain.ResNet_CIFAR',
                             depth=18), 512, True, 32, True),
    'RegNetX-400MF': (dict(type='mmpretrain.RegNet',
                           arch='regnetx_400mf'), 384, True, 64, True),
    'MobileNetV2': (dict(type='mmpretrain.MobileNetV2',
                         widen_factor=0.5), 1280, True, 64, True),
    'MobileNetV3-small': (dict(type='mmpretrain.MobileNetV3',
                               arch='small'), 576, True, 64, True),
    'ShuffleNetV1':
    (dict(type='mmpretrain.ShuffleNetV1'), 960, True, 64, True),
    'ShuffleNetV2':
    (dict(type='mmpretrain.ShuffleNetV2'), 1024, True, 64, True),
    'EfficientNet-B0': (dict(type='mmpretrain.EfficientNet',
                             arch='b0'), 1280, True, 64, True),
    'ConvNeXt-atto':
    (dict(type='mmpretrain.ConvNeXt', arch='atto',
          gap_before_final_norm=True), 320, False, 64, True),
    'VGG-11': (dict(type='mmpretrain.VGG', depth=11,
                    norm_cfg=dict(type='BN')), 512, True, 64, True),
    'DenseNet-121': (dict(type='mmpretrain.DenseNet',
                          arch='121'), 1024, True, 64, True),
    'WideResNet (MMRazor)':
    (dict(type='mmrazor.WideResNet', depth=10,
          widen_factor=1), 64, True, 32, True),
    # mmsakd's CIFAR zoo
    'CIFARResNet-20': (dict(type='mmsakd.CIFARResNet',
                            depth=20), 64, True, 32, True),
    'CIFARWideResNet-16-2':
    (dict(type='mmsakd.CIFARWideResNet', depth=16,
          widen_factor=2), 128, True, 32, True),
    'CIFARVGG-8': (dict(type='mmsakd.CIFARVGG', depth=8), 512, True, 32, True),
    'CIFARMobileNetV2': (dict(type='mmsakd.CIFARMobileNetV2'), 1280, True, 32,
                         True),
    'CIFARShuffleNetV1': (dict(type='mmsakd.CIFARShuffleNetV1'), 960, True, 32,
                          True),
    'CIFARShuffleNetV2': (dict(type='mmsakd.CIFARShuffleNetV2'), 1024, True,
                          32, True),
    'CIFARResNetV2-50': (dict(type='mmsakd.CIFARResNetV2',
                              depth=50), 2048, True, 32, True),
    # MMPretrain's VisionTransformer, by its describer
    'ViT (DeiT-tiny)': (dict(
        type='mmpretrain.VisionTransformer',
        arch='deit-tiny',
        img_size=64,
        patch_size=16), 192, False, 64, True),
    # and SwinTransformer, by its describer
    'Swin (tiny, window 2)': (dict(
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        img_size=64,
        window_size=2), 768, True, 64, True),
    # token models MMPretrain ships: some trace as they are
    'PoolFormer-s12': (dict(type='mmpretrain.PoolFormer',
                            arch='s12'), 512, True, 64, True),
    'LeViT-128s': (dict(type='mmpretrain.LeViT', arch='128s',
                        img_size=64), 384, True, 64, True),
    'MobileViT-xxs': (dict(type='mmpretrain.MobileViT',
                           arch='xx_small'), 320, True, 32, True),
    # others branch on traced shapes (no describer yet)
    'T2T-ViT': (dict(
        type='mmpretrain.T2T_ViT',
        img_size=64,
        embed_dims=64,
        num_layers=2,
        layer_cfgs=dict(num_heads=2)), 64, False, 64, False),
    'EfficientFormer-l1': (dict(
        type='mmpretrain.EfficientFormer', arch='l1',
        reshape_last_feat=True), 448, True, 224, False),
    # one GELU module called in the stem, every stage and inside a leaf
    # module: call k of the graph is not call k of the forward, which the
    # verification catches
    'ConvMixer': (dict(
        type='mmpretrain.ConvMixer',
        arch=dict(embed_dims=32, depth=2, patch_size=4,
                  kernel_size=3)), 32, True, 64, 'does not give the tensor'),
    # multi-branch networks are refused, saying why
    'HRNet-W18': (dict(type='mmpretrain.HRNet', arch='w18'), 2048, True, 64,
                  'passes a list of branch maps'),
}


def classifier(name: str) -> torch.nn.Module:
    backbone, channels, neck, _, _ = TABLE[name]
    cfg = dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=backbone,
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=channels))
    if neck:
        cfg['neck'] = dict(type='mmpretrain.GlobalAveragePooling')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(cfg).eval()


@pytest.mark.parametrize('name', sorted(TABLE))
def test_backbone_table(name):
    size, can_cut = TABLE[name][3:]
    model = classifier(name)
    shape = (3, size, size)
    if isinstance(can_cut, str):  # refused by a describer or the check
        with pytest.raises((TypeError, ValueError), match=can_cut):
            SegmentExecutor(model, shape)
        return
    if not can_cut:
        with pytest.raises(TypeError) as info:
            SegmentExecutor(model, shape)
        msg = str(info.value)
        assert 'cannot cut the backbone' in msg
        assert 'register_segment_describer' in msg
        return
    executor = SegmentExecutor(model, shape)
    assert len(executor.names) >= 4  # stem ... backbone, (neck,) head
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x, mode='tensor')
        for k in range(len(executor.names)):
            mid = executor.run(x, end=k)
            assert torch.equal(executor.run(mid, start=k), logits), (
                executor.names[k])
