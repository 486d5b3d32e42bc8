"""tools/model_converters/repdistiller2mmsakd.py against the benchmark models.

Every family is checked end to end: a reference model with the benchmark's
names and forward (``repdistiller_reference``) gets random weights and BN
statistics, is saved the way RepDistiller / SAKD save teachers, converted,
loaded strictly into our ``ImageClassifier`` and must give the same logits.
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from torch import nn

from mmsakd.registry import MODELS
from tests.helpers import REPO, run_tool
from tests.test_compat.test_atomic_checkpoint import disk_full_after
from tests.test_models.test_backbones.utils import (build_classifier,
                                                    build_config)
from tests.test_tools import repdistiller_reference as reference
from tools.model_converters import repdistiller2mmsakd as tool

TOOL = osp.join('tools', 'model_converters', 'repdistiller2mmsakd.py')

# our backbone and head width per benchmark name, written out here rather
# than taken from the tool so that a wrong table in the tool shows up
OURS = {
    'resnet8': (dict(type='mmsakd.CIFARResNet', depth=8), 64),
    'resnet8x4': (dict(type='mmsakd.CIFARResNet', depth=8, arch='x4'), 256),
    'wrn_16_1': (dict(type='mmsakd.CIFARWideResNet', depth=16,
                      widen_factor=1), 64),
    'vgg8': (dict(type='mmsakd.CIFARVGG', depth=8), 512),
    'mobile_half': (dict(type='mmsakd.CIFARMobileNetV2',
                         widen_factor=0.5), 1280),
    'MobileNetV2': (dict(type='mmsakd.CIFARMobileNetV2',
                         widen_factor=1.0), 1280),
    'ShuffleV1': (dict(type='mmsakd.CIFARShuffleNetV1', groups=3), 960),
    'ShuffleV2': (dict(type='mmsakd.CIFARShuffleNetV2',
                       widen_factor=1.0), 1024),
    'ResNet18': (dict(type='mmsakd.CIFARResNetV2', depth=18), 512),
    'ResNet50': (dict(type='mmsakd.CIFARResNetV2', depth=50), 2048),
}

# configs/_base_/models/cifar/<name>.py -> the benchmark name of its model
CONFIG_ARCHS = {
    'resnet20': 'resnet20',
    'resnet32': 'resnet32',
    'resnet56': 'resnet56',
    'resnet110': 'resnet110',
    'resnet8x4': 'resnet8x4',
    'resnet32x4': 'resnet32x4',
    'wrn_16_2': 'wrn_16_2',
    'wrn_40_2': 'wrn_40_2',
    'vgg8': 'vgg8',
    'vgg13': 'vgg13',
    'mobilenetv2': 'MobileNetV2',
    'shufflenetv1': 'ShuffleV1',
    'resnet50': 'ResNet50',
}


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics, at scales that keep logits O(1).

    Defaults (BN weight 1, running variance 1, ...) would hide a swapped
    mean and variance or a BN loaded into the wrong layer.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(t, low=-1.0, high=1.0):
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = (3.0 / m.weight[0].numel())**0.5
                rand(m.weight, -bound, bound)
                if m.bias is not None:
                    rand(m.bias, -0.1, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                rand(m.weight, 0.5, 1.5)
                rand(m.bias, -0.2, 0.2)
                rand(m.running_mean, -0.2, 0.2)
                rand(m.running_var, 0.5, 2.0)
                m.num_batches_tracked.fill_(
                    int(torch.randint(1, 10**6, (1, ), generator=gen)))
    return model


def make_reference(arch: str, num_classes: int = 100) -> nn.Module:
    model = reference.build(arch, num_classes)
    default = {k: v.clone() for k, v in model.state_dict().items()}
    randomise(model).eval()
    kept = [
        k for k, v in model.state_dict().items() if torch.equal(v, default[k])
    ]
    assert not kept, f'not randomised: {kept}'
    return model


def ours(arch: str, num_classes: int = 100) -> nn.Module:
    backbone, in_channels = OURS[arch]
    return build_classifier(dict(backbone), in_channels, num_classes).eval()


def images(batch: int = 2) -> torch.Tensor:
    return torch.randn(
        batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def check_same_logits(ref: nn.Module, model: nn.Module) -> None:
    x = images()
    with torch.no_grad():
        got = model(x, mode='tensor')
        ref.fixed_pool = False
        sakd = ref(x)
        ref.fixed_pool = True
        repdistiller = ref(x)
    # SAKD pools adaptively, as our GlobalAveragePooling neck does: the same
    # operations in the same order, so bit-identical logits
    assert torch.equal(got, sakd), (got - sakd).abs().max()
    # RepDistiller's fixed-kernel average pooling sums the map in another
    # order than the adaptive one; it differs in the last bits only
    torch.testing.assert_close(got, repdistiller, rtol=1e-6, atol=1e-6)
    assert got.abs().max() > 0.1  # not a vacuous comparison


@pytest.mark.parametrize('arch', list(OURS))
def test_convert_gives_the_reference_logits(arch, tmp_path):
    ref = make_reference(arch)
    src = str(tmp_path / 'ckpt.pth')
    torch.save({'model': ref.state_dict()}, src)

    source, _ = tool.load_source(src)
    converted = tool.convert(source, arch)
    model = ours(arch)
    model.load_state_dict(converted, strict=True)
    check_same_logits(ref, model)


@pytest.mark.slow
def test_cli_converts_a_sakd_checkpoint(tmp_path):
    ref = make_reference('resnet8x4')
    src, dst = str(tmp_path / 'best.pth'), str(tmp_path / 'out' / 'r.pth')
    # as SAKD saves it, from a DataParallel model, next to training state
    torch.save(
        {
            'epoch': 240,
            'model': {
                f'module.{k}': v
                for k, v in ref.state_dict().items()
            },
            'acc': torch.tensor(75.5),
            'optimizer': {
                'state': {},
                'param_groups': [{
                    'lr': 0.05,
                    'params': [0]
                }]
            },
            'policy': {
                'fc.weight': torch.ones(2, 2)
            },
        }, src)
    result = run_tool([TOOL, src, dst, '--arch', 'resnet8x4'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'converted' in result.stdout

    saved = torch.load(dst, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert saved['meta']['arch'] == 'resnet8x4'
    assert saved['meta']['num_classes'] == 100
    assert saved['meta']['source_info'] == {'epoch': 240, 'acc': 75.5}
    assert not any(
        k.startswith(('module.', 'policy', 'fc.'))
        for k in saved['state_dict'])
    model = ours('resnet8x4')
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    check_same_logits(ref, model)

    # and as the teacher of an MMRazor distillation
    cfg = dict(
        type='mmrazor.SingleTeacherDistill',
        architecture=tool.model_config('resnet8'),
        teacher=tool.model_config('resnet8x4'),
        teacher_ckpt=dst,
        distiller=dict(type='mmrazor.ConfigurableDistiller'))
    with DefaultScope.overwrite_default_scope('mmsakd'):
        distill = MODELS.build(cfg)
    check_same_logits(ref, distill.teacher.eval())


@pytest.mark.parametrize('wrap', ['model', 'state_dict', None])
def test_accepts_every_wrapping(wrap):
    state = reference.build('resnet8').state_dict()
    ckpt = state if wrap is None else {wrap: state, 'epoch': 3}
    source, others = tool.extract_state_dict(ckpt)
    assert source is state
    assert others == ([] if wrap is None else ['epoch'])
    assert list(tool.convert(source,
                             'resnet8')) == list(ours('resnet8').state_dict())


def test_num_classes_follow_the_checkpoint():
    ref = make_reference('vgg8', num_classes=200)
    model = ours('vgg8', num_classes=200)
    model.load_state_dict(tool.convert(ref.state_dict(), 'vgg8'))
    check_same_logits(ref, model)


def test_wrong_arch_lists_unmapped_keys(tmp_path):
    state = reference.build('wrn_16_1').state_dict()
    with pytest.raises(tool.ConversionError) as info:
        tool.convert(state, 'resnet8')
    message = str(info.value)
    assert '--arch resnet8' in message
    assert 'match no resnet rule' in message
    assert 'block1.layer.0.bn1.weight' in message
    assert 'keys of our model are missing' in message
    # it says which model the keys do belong to
    assert 'The checkpoint converts as --arch wrn_16_1.' in message

    # the CLI reports it and writes nothing
    src, dst = str(tmp_path / 'wrn.pth'), str(tmp_path / 'out.pth')
    torch.save({'model': state}, src)
    assert tool.main([src, dst, '--arch', 'resnet8']) == 1
    assert not osp.exists(dst)


def test_same_family_other_size_lists_keys_and_shapes():
    state = reference.build('resnet8').state_dict()
    with pytest.raises(tool.ConversionError) as info:
        tool.convert(state, 'resnet8x4')
    message = str(info.value)
    assert 'shapes differ' in message and '--arch resnet8x4' in message
    assert ('backbone.stem.0.weight (from conv1.weight): checkpoint '
            '(16, 3, 3, 3) vs model (32, 3, 3, 3)') in message
    assert 'The checkpoint converts as --arch resnet8.' in message
    with pytest.raises(tool.ConversionError, match='layer1.1.conv1.weight'):
        tool.convert(state, 'resnet14')


def test_every_key_is_mapped_once(monkeypatch):
    state = reference.build('resnet8').state_dict()
    state['module.conv1.weight'] = state['conv1.weight']
    with pytest.raises(
            tool.ConversionError, match='with and without "module."') as info:
        tool.convert(state, 'resnet8')
    assert '    conv1.weight' in str(info.value)
    # two rules giving one name is caught as well
    rules = tool.FAMILY_RULES['resnet']
    monkeypatch.setitem(tool.FAMILY_RULES, 'resnet',
                        [(r'bn2', 'backbone.stem.1')] + rules)
    state = reference.build('resnet8').state_dict()
    state['bn2.weight'] = state['bn1.weight']
    with pytest.raises(
            tool.ConversionError, match='1 keys map to the same name') as info:
        tool.convert(state, 'resnet8')
    assert 'bn2.weight (as backbone.stem.1.weight, like bn1.weight)' in str(
        info.value)


def test_old_checkpoints_without_batch_counters(tmp_path):
    ref = make_reference('wrn_16_1')
    state = {
        k: v
        for k, v in ref.state_dict().items()
        if not k.endswith('num_batches_tracked')
    }
    converted = tool.convert(state, 'wrn_16_1')
    assert int(converted['backbone.final_norm.0.num_batches_tracked']) == 0
    model = ours('wrn_16_1')
    model.load_state_dict(converted, strict=True)
    check_same_logits(ref, model)
    # one missing counter among present ones is a broken file, not an old one
    state = ref.state_dict()
    del state['bn1.num_batches_tracked']
    with pytest.raises(tool.ConversionError, match='missing'):
        tool.convert(state, 'wrn_16_1')


class _RunsCode:

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_file_that_runs_code_is_refused(tmp_path, capsys):
    marker = str(tmp_path / 'ran')
    src, dst = str(tmp_path / 'evil.pth'), str(tmp_path / 'out.pth')
    torch.save({'model': _RunsCode(marker)}, src)
    assert tool.main([src, dst, '--arch', 'resnet8']) == 1
    err = capsys.readouterr().err
    assert 'refused to load' in err and 'system' in err
    assert not osp.exists(marker) and not osp.exists(dst)
    # a file that is no checkpoint is called corrupt, not dangerous, and a
    # missing one is not a traceback
    for content in (b'not a checkpoint', bytes(range(7, 71)), b''):
        with open(src, 'wb') as f:
            f.write(content)
        assert tool.main([src, dst, '--arch', 'resnet8']) == 1
        err = capsys.readouterr().err
        assert f'cannot read {src}: it is not a valid PyTorch checkpoint' \
            in err
        assert 'run code' not in err and 'weights_only' not in err
    assert tool.main([src + '.gone', dst, '--arch', 'resnet8']) == 1
    assert 'cannot read' in capsys.readouterr().err


def test_output_that_is_the_input_is_refused(tmp_path, capsys):
    src = str(tmp_path / 'resnet8.pth')
    torch.save({'model': {'w': torch.ones(1)}}, src)
    before = open(src, 'rb').read()
    os.symlink(src, str(tmp_path / 'link.pth'))
    for dst in (src, str(tmp_path / '.' / 'resnet8.pth'),
                str(tmp_path / 'sub' / '..' / 'resnet8.pth'),
                str(tmp_path / 'link.pth')):
        assert tool.main([src, dst, '--arch', 'resnet8']) == 1
        assert 'is the input' in capsys.readouterr().err
    assert open(src, 'rb').read() == before


def test_a_failed_write_keeps_the_previous_output(tmp_path):
    src, dst = str(tmp_path / 'resnet8.pth'), str(tmp_path / 'r8.pth')
    torch.save({'model': reference.build('resnet8').state_dict()}, src)
    assert tool.main([src, dst, '--arch', 'resnet8']) == 0
    before = open(dst, 'rb').read()
    torch.save({'model': make_reference('resnet8').state_dict()}, src)
    # torch.save reports the failed write as a RuntimeError
    with disk_full_after(64 * 1024), pytest.raises((OSError, RuntimeError)):
        tool.main([src, dst, '--arch', 'resnet8'])
    assert open(dst, 'rb').read() == before
    assert sorted(os.listdir(tmp_path)) == ['r8.pth', 'resnet8.pth']


def test_unknown_arch_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        tool.main(['a.pth', 'b.pth', '--arch', 'resnet9'])
    assert 'invalid choice' in capsys.readouterr().err
    with pytest.raises(tool.ConversionError, match='unknown --arch'):
        tool.convert({}, 'resnet9')


@pytest.mark.parametrize('name', sorted(CONFIG_ARCHS))
def test_arch_builds_the_config_model(name):
    """The tool's model for an arch is the one of its model config."""
    expected = build_config(name).state_dict()
    model = tool.build_model(CONFIG_ARCHS[name], device='meta')
    assert {
        k: v.shape
        for k, v in model.state_dict().items()
    } == {
        k: v.shape
        for k, v in expected.items()
    }


def test_supported_arch_names():
    assert set(reference.MODEL_DICT) <= set(tool.ARCHS)
    assert tool.resolve_arch('ShuffleNetV2') == 'ShuffleV2'
    assert osp.isfile(osp.join(REPO, TOOL))
