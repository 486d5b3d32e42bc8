"""Helpers of the backbone tests: builders, layer sizes, stage checks."""
import os.path as osp
from contextlib import ExitStack
from typing import Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmrazor.models.task_modules import ModuleOutputsRecorder
from torch import nn

import mmsakd.models.backbones  # noqa: F401
from mmsakd.models.sakd import SegmentExecutor
from mmsakd.models.sakd.utils import eval_mode
from mmsakd.registry import MODELS
from tests.helpers import REPO

CONFIG_DIR = osp.join(REPO, 'configs', '_base_', 'models', 'cifar')
# the configs leave it to the runner, which takes it from the dataset config
PREPROCESSOR = dict(type='mmpretrain.ClsDataPreprocessor')


# Parameter counts from layer sizes alone, to check the modules against.
def conv(cin: int,
         cout: int,
         k: int = 1,
         groups: int = 1,
         bias: bool = False) -> int:
    return cin // groups * cout * k * k + (cout if bias else 0)


def bn(channels: int) -> int:
    return 2 * channels


def fc(cin: int, num_classes: int = 100) -> int:
    return cin * num_classes + num_classes


def build_classifier(backbone: dict,
                     in_channels: int,
                     num_classes: int = 100) -> nn.Module:
    """The MMPretrain ``ImageClassifier`` (GAP neck, linear head)."""
    cfg = dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=PREPROCESSOR,
        backbone=backbone,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=in_channels))
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(cfg)


def build_config(name: str) -> nn.Module:
    """The model of ``configs/_base_/models/cifar/<name>.py``."""
    model = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py')).model
    model.data_preprocessor = PREPROCESSOR
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(model)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def images(size: int = 32, batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, size, size, generator=gen)


def check_stages(model: nn.Module,
                 shapes: Sequence[Tuple[int, ...]],
                 size: int = 32) -> None:
    """Check a classifier's backbone stage by stage against its forward.

    The outputs that MMRazor recorders take at ``backbone.<stage>`` during
    the classifier's forward must have ``shapes``, be the segment
    boundaries that SAKD cuts the classifier at, and running the segments
    from every stage on must give the logits bit for bit; the neck must
    average-pool the last stage and the logits must be ``head.fc`` of that
    pooled vector.
    """
    model.eval()
    backbone = model.backbone
    names = backbone.stage_names
    # the stages are all the children, so nothing runs outside them
    assert tuple(n for n, _ in backbone.named_children()) == names
    x = images(size)
    recorders = [ModuleOutputsRecorder(f'backbone.{n}') for n in names]
    for recorder in recorders:
        recorder.initialize(model)
    with torch.no_grad(), ExitStack() as stack:
        for recorder in recorders:
            stack.enter_context(recorder)
        logits = model(x, mode='tensor')
    feats = [recorder.get_record_data() for recorder in recorders]

    assert [tuple(f.shape[1:]) for f in feats] == [tuple(s) for s in shapes]
    executor = SegmentExecutor(model, (3, size, size))
    with torch.no_grad():
        out = backbone(x)
        assert isinstance(out, tuple) and len(out) == 1
        assert torch.equal(out[0], feats[-1])
        for name, feat in zip(names, feats):
            spot = executor.index(f'backbone.{name}')
            assert executor.names[spot] == f'backbone.{name}'
            assert torch.equal(executor.run(x, end=spot), feat)
            assert torch.equal(executor.run(feat, start=spot), logits)
        pooled = model.extract_feat(x)[-1]
        assert pooled.shape == (2, shapes[-1][0])
        assert torch.allclose(pooled, feats[-1].mean((2, 3)), atol=1e-6)
        assert torch.equal(model.head.fc(pooled), logits)
    assert logits.shape == (2, model.head.num_classes)


def stage_shapes(backbone: nn.Module, size: int = 32) -> dict:
    """Output shape of every stage of a staged backbone (eval, no grad)."""
    x = torch.zeros(1, 3, size, size)
    shapes = {}
    with eval_mode(backbone), torch.no_grad():
        for name in backbone.stage_names:
            x = getattr(backbone, name)(x)
            shapes[name] = tuple(x.shape[1:])
    return shapes


def check_classifies(model: nn.Module, size: int = 64) -> torch.Tensor:
    """Logits of a ``size`` x ``size`` batch; adaptive pooling must cope."""
    model.eval()
    with torch.no_grad():
        logits = model(images(size), mode='tensor')
    assert logits.shape == (2, model.head.num_classes)
    assert torch.isfinite(logits).all()
    return logits


def check_reference_init(model: nn.Module) -> None:
    """Convs ~ N(0, 2 / fan_out) with zero bias; BN weight 1, bias 0."""
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    norms = [
        m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    assert convs and norms
    with torch.no_grad():
        for m in norms:
            m.weight.fill_(0.3)
            m.bias.fill_(0.3)
        for m in convs:
            if m.bias is not None:
                m.bias.fill_(0.3)
    model.init_weights()
    for m in norms:
        assert torch.equal(m.weight, torch.ones_like(m.weight))
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
    for m in convs:
        if m.bias is not None:
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # only the largest convs have enough weights for a tight std estimate
    big = sorted(convs, key=lambda m: m.weight.numel())[-3:]
    for m in big:
        k = m.kernel_size[0] * m.kernel_size[1]
        expected = (2.0 / (k * m.out_channels))**0.5
        assert abs(m.weight.std().item() / expected - 1) < 0.05
