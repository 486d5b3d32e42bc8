import pytest
from mmengine.config import Config

from mmsakd.utils import check_teacher_ckpt


def _cfg(ckpt):
    return Config(dict(model=dict(type='SingleTeacherDistill',
                                  teacher_ckpt=ckpt)))


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
        dict(model=dict(
            teacher_ckpt=None,
            distiller=dict(connectors=dict(t_factor=dict(
                type='Paraphraser',
                init_cfg=dict(type='Pretrained', checkpoint=missing)))))))
    with pytest.raises(FileNotFoundError) as e:
        check_teacher_ckpt(cfg)
    key = 'model.distiller.connectors.t_factor.init_cfg.checkpoint'
    assert f'{key}={missing!r}' in str(e.value)
    assert f'--cfg-options {key}=PATH' in str(e.value)
