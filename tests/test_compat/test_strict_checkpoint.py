import os
from collections import OrderedDict

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from mmsakd.compat import CheckpointLoadError, check_checkpoint_fits
from mmsakd.compat.strict_checkpoint import checkpoint_part
from mmsakd.registry import MODELS


@pytest.fixture(autouse=True)
def mmsakd_scope():
    with DefaultScope.overwrite_default_scope('mmsakd'):
        yield


def _classifier(depth, arch='x1', num_classes=10):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(type='mmsakd.CIFARResNet', depth=depth, arch=arch),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=num_classes,
            in_channels=64 if arch == 'x1' else 256))


def _distill(teacher_ckpt=None, teacher=14, student=8):
    return MODELS.build(
        dict(
            type='mmrazor.SingleTeacherDistill',
            architecture=_classifier(student),
            teacher=_classifier(teacher),
            teacher_ckpt=teacher_ckpt,
            distiller=dict(
                type='mmrazor.ConfigurableDistiller',
                student_recorders=dict(
                    logits=dict(type='ModuleOutputs', source='head.fc')),
                teacher_recorders=dict(
                    logits=dict(type='ModuleOutputs', source='head.fc')),
                distill_losses=dict(loss_kd=dict(type='KLDivergence')),
                loss_forward_mappings=dict(
                    loss_kd=dict(
                        preds_S=dict(from_student=True, recorder='logits'),
                        preds_T=dict(from_student=False,
                                     recorder='logits'))))))


def _save(model, path):
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def _same(a, b):
    return all(torch.equal(v, b[k]) for k, v in a.items()) and \
        set(a) == set(b)


class _CreatesFile:

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


def test_teacher_of_the_right_arch_loads(tmp_path):
    teacher = MODELS.build(_classifier(14))
    model = _distill(_save(teacher, tmp_path / 't.pth'))
    assert _same(model.teacher.state_dict(), teacher.state_dict())


def test_teacher_of_another_depth_fails_with_a_summary(tmp_path):
    path = _save(MODELS.build(_classifier(8)), tmp_path / 'r8.pth')
    with pytest.raises(CheckpointLoadError) as e:
        _distill(path)
    msg = str(e.value)
    assert f"model.teacher_ckpt='{path}' does not fit" in msg
    # resnet14 has two more blocks per stage than resnet8
    assert (
        '36 key(s) missing (e.g. backbone.layer1.1.conv1.weight, '
        'backbone.layer1.1.bn1.weight, backbone.layer1.1.conv2.weight') in msg
    assert 'repdistiller2mmsakd.py' in msg


def test_teacher_with_other_shapes_fails_naming_them(tmp_path):
    path = _save(MODELS.build(_classifier(8, arch='x4')), tmp_path / 'x4.pth')
    with pytest.raises(
            CheckpointLoadError,
            match=r'of another shape \(e.g. backbone.stem.0.weight '
            r'\(checkpoint \(32, 3, 3, 3\), model \(16, 3, 3, 3\)'):
        _distill(path, teacher=8)


def test_unpatched_mmrazor_loads_a_wrong_teacher_silently(tmp_path):
    """Why the patch exists: mmengine's default is strict=False."""
    path = _save(MODELS.build(_classifier(8)), tmp_path / 'r8.pth')
    teacher = MODELS.build(_classifier(14))
    # only logs the missing keys; layer1.1 keeps its random weights
    load_checkpoint(teacher, path)
    assert 'backbone.layer1.1.conv1.weight' not in torch.load(
        path)['state_dict']


def test_distillation_checkpoint_gives_its_teacher_part(tmp_path):
    run = _distill()
    path = _save(run, tmp_path / 'kd_run.pth')
    model = _distill(path)
    assert _same(model.teacher.state_dict(), run.teacher.state_dict())


def test_distillation_checkpoint_gives_its_student_part(tmp_path):
    # a resnet8 student distilled before becomes a resnet8 teacher
    run = _distill(teacher=14, student=8)
    path = _save(run, tmp_path / 'kd_run.pth')
    model = _distill(path, teacher=8, student=8)
    assert _same(model.teacher.state_dict(), run.architecture.state_dict())


def test_a_part_keeps_its_module_versions_its_own_as_the_root():
    state_dict = OrderedDict([('teacher.bn.weight', torch.ones(2)),
                              ('teacher_x.w', torch.zeros(1)),
                              ('architecture.bn.weight', torch.zeros(2))])
    state_dict._metadata = OrderedDict([('', dict(version=1)),
                                        ('teacher', dict(version=7)),
                                        ('teacher.bn', dict(version=2)),
                                        ('teacher_x', dict(version=3)),
                                        ('architecture.bn', dict(version=4))])
    part = checkpoint_part(state_dict, 'teacher.')
    assert list(part) == ['bn.weight']
    assert part._metadata == OrderedDict([('', dict(version=7)),
                                          ('bn', dict(version=2))])


def test_ambiguous_distillation_checkpoint_says_how_to_extract(tmp_path):
    path = _save(_distill(teacher=8, student=8), tmp_path / 'self.pth')
    with pytest.raises(
            CheckpointLoadError,
            match='architecture.* and teacher.* parts both fit: '
            'extract the part you mean'):
        _distill(path, teacher=8)


def test_classifier_checkpoint_for_a_distillation_model(tmp_path):
    path = _save(MODELS.build(_classifier(8)), tmp_path / 'r8.pth')
    with pytest.raises(
            CheckpointLoadError,
            match="CHECKPOINT='.*' does not fit "
            'SingleTeacherDistill: .* missing .* unexpected.* '
            'evaluate it with the config it was trained with'):
        check_checkpoint_fits(_distill(), path, 'CHECKPOINT')


def test_own_checkpoint_fits(tmp_path):
    model = _distill()
    check_checkpoint_fits(model, _save(model, tmp_path / 'a.pth'),
                          'CHECKPOINT')


def test_distillation_checkpoint_for_a_classifier_config(tmp_path):
    path = _save(_distill(), tmp_path / 'kd.pth')
    with pytest.raises(
            CheckpointLoadError,
            match="CHECKPOINT='.*' does not fit ImageClassifier: "
            '.* whose architecture.* part fits: evaluate it with '
            'the distillation config'):
        check_checkpoint_fits(MODELS.build(_classifier(8)), path, 'CHECKPOINT')


@pytest.fixture
def no_weights_only_env(monkeypatch):
    """torch.load's default turned off from outside."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


@pytest.fixture
def evil_ckpt(tmp_path):
    marker = tmp_path / 'compromised'
    path = str(tmp_path / 'evil.pth')
    torch.save({
        'state_dict': {
            'w': torch.ones(1)
        },
        'x': _CreatesFile(marker)
    }, path)
    return path, marker


def test_env_cannot_turn_off_weights_only_for_teacher(no_weights_only_env,
                                                      evil_ckpt):
    path, marker = evil_ckpt
    with pytest.raises(
            CheckpointLoadError,
            match='model.teacher_ckpt: refused to load .*could '
            'run code') as e:
        _distill(path)
    assert e.value.refused and not marker.exists()
    assert 'weights_only=False' not in str(e.value)


def test_env_cannot_turn_off_weights_only_for_resume_and_test(
        no_weights_only_env, evil_ckpt):
    path, marker = evil_ckpt
    # Runner.resume / load_from (and so tools/test.py) read files this way
    with pytest.raises(CheckpointLoadError, match='refused'):
        _load_checkpoint(path, map_location='cpu')
    with pytest.raises(CheckpointLoadError, match='CHECKPOINT: refused'):
        check_checkpoint_fits(_distill(), path, 'CHECKPOINT')
    assert not marker.exists()


def test_env_cannot_turn_off_weights_only_for_pretrained(
        no_weights_only_env, evil_ckpt):
    path, marker = evil_ckpt
    cfg = _classifier(8)
    cfg['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    model = MODELS.build(cfg)
    with pytest.raises(CheckpointLoadError, match='refused'):
        model.init_weights()
    assert not marker.exists()


def test_env_cannot_turn_off_weights_only_for_urls(no_weights_only_env,
                                                   evil_ckpt, tmp_path,
                                                   monkeypatch):
    import shutil
    path, marker = evil_ckpt
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, *a, **k: shutil.copy(path, dst))
    with pytest.raises(CheckpointLoadError, match='refused'):
        _load_checkpoint('https://example.org/evil.pth', map_location='cpu')
    assert not marker.exists()


@pytest.mark.parametrize(
    'content', [b'', bytes(range(7, 71)), b'not a ckpt\n'],
    ids=['empty', 'bytes', 'text'])
def test_garbage_is_called_corrupt_not_dangerous(tmp_path, content):
    path = str(tmp_path / 'garbage.pth')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(
            CheckpointLoadError,
            match=f'model.teacher_ckpt: cannot read {path}: it is '
            'not a valid PyTorch checkpoint') as e:
        _distill(path)
    assert not e.value.refused
    assert 'run code' not in str(e.value)
    assert 'weights_only' not in str(e.value)


def test_truncated_checkpoint_is_called_corrupt(tmp_path):
    path = _save(MODELS.build(_classifier(8)), tmp_path / 'r8.pth')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointLoadError, match='corrupt'):
        _distill(path, teacher=8)
