import pytest
from mmengine.config import Config

from mmsakd.compat import CheckpointLoadError
from mmsakd.utils import check_num_classes, check_teacher_ckpt
from mmsakd.utils.config_checks import checkpoint_errors_name_keys


def _cfg(ckpt):
    return Config(
        dict(model=dict(type='SingleTeacherDistill', teacher_ckpt=ckpt)))


def test_missing_local_teacher_ckpt_names_key_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        check_teacher_ckpt(_cfg(str(tmp_path / 'teacher.pth')))
    assert 'model.teacher_ckpt=' in str(e.value)
    assert '--cfg-options model.teacher_ckpt=' in str(e.value)


@pytest.mark.parametrize('ckpt', [None, '', 'https://host/teacher.pth'])
def test_unset_or_remote_ckpt_is_not_checked(ckpt):
    check_teacher_ckpt(_cfg(ckpt))


def test_existing_ckpt_passes(tmp_path):
    path = tmp_path / 'teacher.pth'
    path.write_bytes(b'x')
    check_teacher_ckpt(_cfg(str(path)))
    check_teacher_ckpt(Config(dict()))  # configs without a model


def test_missing_pretrained_init_checkpoint_names_its_key(tmp_path):
    missing = str(tmp_path / 'paraphraser.pth')
    cfg = Config(
        dict(
            model=dict(
                teacher_ckpt=None,
                distiller=dict(
                    connectors=dict(
                        t_factor=dict(
                            type='Paraphraser',
                            init_cfg=dict(
                                type='Pretrained', checkpoint=missing)))))))
    with pytest.raises(FileNotFoundError) as e:
        check_teacher_ckpt(cfg)
    key = 'model.distiller.connectors.t_factor.init_cfg.checkpoint'
    assert f'{key}={missing!r}' in str(e.value)
    assert f'--cfg-options {key}=PATH' in str(e.value)


@pytest.mark.parametrize('cfg, path, key', [
    (dict(resume=True,
          load_from='w/epoch_3.pth'), 'w/epoch_3.pth', '--resume'),
    (dict(resume=True, load_from=None), 'w/epoch_9.pth',
     '--resume (the latest checkpoint of work_dir)'),
    (dict(load_from='a.pth'), 'a.pth', 'load_from'),
    (dict(
        model=dict(
            backbone=dict(
                init_cfg=dict(type='Pretrained', checkpoint='p.pth')))),
     'p.pth', 'model.backbone.init_cfg.checkpoint'),
])
def test_checkpoint_errors_name_the_key(cfg, path, key):
    with pytest.raises(CheckpointLoadError) as e:
        with checkpoint_errors_name_keys(Config(cfg)):
            raise CheckpointLoadError(
                path, f'refused to load {path}: ...', refused=True)
    assert str(e.value) == f'{key}: refused to load {path}: ...'
    assert e.value.refused and e.value.key == key


def test_checkpoint_errors_named_once():
    cfg = Config(dict(model=dict(teacher_ckpt='t.pth')))
    with pytest.raises(CheckpointLoadError) as e:
        with checkpoint_errors_name_keys(cfg):
            raise CheckpointLoadError(
                't.pth', 'model.teacher_ckpt: bad', key='model.teacher_ckpt')
    assert str(e.value) == 'model.teacher_ckpt: bad'


def _head_model(num_classes):
    from mmengine.registry import DefaultScope

    from mmsakd.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(
            dict(
                type='mmpretrain.ImageClassifier',
                data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
                backbone=dict(type='mmsakd.CIFARResNet', depth=8),
                neck=dict(type='mmpretrain.GlobalAveragePooling'),
                head=dict(
                    type='mmpretrain.LinearClsHead',
                    num_classes=num_classes,
                    in_channels=64)))


def _train_set(dataset):
    return Config(dict(train_dataloader=dict(dataset=dataset)))


def test_head_with_fewer_classes_than_the_dataset_names_both():
    cfg = _train_set(
        dict(
            type='mmsakd.CRDSampleDataset',
            dataset=dict(type='mmsakd.CIFAR100', data_root='x')))
    with pytest.raises(
            ValueError,
            match=r'model.head.num_classes=10, but the training '
            r'set \(mmsakd.CIFAR100\) has 100 classes .* '
            '--cfg-options model.head.num_classes=100'):
        check_num_classes(_head_model(10), cfg)


def test_enough_classes_or_unknown_dataset_pass():
    check_num_classes(
        _head_model(100), _train_set(dict(type='mmsakd.SklearnDigits')))
    check_num_classes(
        _head_model(10), _train_set(dict(type='mmsakd.SklearnDigits')))
    check_num_classes(_head_model(2), _train_set(dict(type='Unknown')))
    with pytest.raises(ValueError, match='has 3 classes'):
        check_num_classes(
            _head_model(2),
            _train_set(
                dict(type='mmsakd.CIFAR100', metainfo=dict(classes='abc'))))
