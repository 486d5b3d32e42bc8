"""tools/model_converters/convert_kd_ckpt_to_student.py: the student of a
distillation checkpoint as a plain MMPretrain classifier checkpoint."""
import os
import os.path as osp
import pickle
import re

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmsakd.compat import CheckpointLoadError, check_checkpoint_fits
from mmsakd.registry import MODELS
from mmsakd.utils import load_config
from tests.helpers import REPO, run_tool
from tools.model_converters import convert_kd_ckpt_to_student as tool

TOOL = osp.join('tools', 'model_converters', 'convert_kd_ckpt_to_student.py')
STUDENT_CFG = osp.join(REPO, 'configs', 'vanilla', 'resnet20_cifar100.py')


def build_vanilla(config: str) -> torch.nn.Module:
    """The classifier of a vanilla config, as the Runner builds it."""
    cfg = load_config(config)
    model = cfg.model
    model.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return MODELS.build(model)


def random_state(model: torch.nn.Module, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for value in state.values():
        if value.is_floating_point():
            value.copy_(torch.randn(value.shape, generator=gen))
    return state


def distill_checkpoint(student_state: dict) -> dict:
    """A checkpoint laid out as tools/train.py writes one for
    SpotAdaptiveDistill: student, teacher, distiller and SAKD parts, the
    run's meta and its training state."""
    state_dict = type(student_state)(
        (f'architecture.{k}', v) for k, v in student_state.items())
    state_dict._metadata = type(student_state._metadata)(
        ('architecture' + (f'.{k}' if k else ''), v)
        for k, v in student_state._metadata.items())
    state_dict._metadata[''] = dict(version=1)
    state_dict['teacher.head.fc.weight'] = torch.ones(100, 64)
    state_dict['distiller.distill_losses.loss_crd.contrast.memory_v1'] = (
        torch.zeros(8, 128))
    state_dict['sakd_policy.fc.weight'] = torch.ones(6, 128)
    state_dict['sakd_routing.hints.0.weight'] = torch.ones(16, 16, 1, 1)
    return dict(
        meta=dict(epoch=3, iter=30, dataset_meta=dict(classes=['a', 'b'])),
        state_dict=state_dict,
        optimizer=dict(state={}, param_groups=[]),
        param_schedulers=[],
        rng_state=dict(torch=torch.get_rng_state()))


@pytest.fixture(scope='module')
def student():
    model = build_vanilla(STUDENT_CFG)
    return model, random_state(model)


def test_exports_the_student_alone_and_keeps_meta(student, tmp_path, capsys):
    model, state = student
    src = str(tmp_path / 'epoch_3.pth')
    torch.save(distill_checkpoint(state), src)

    assert tool.main([src]) == 0
    out = str(tmp_path / 'student_epoch_3.pth')
    printed = capsys.readouterr().out
    assert f'to {out}' in printed
    assert 'teacher.* (1)' in printed and 'sakd_policy.* (1)' in printed
    assert 'optimizer' in printed

    exported = torch.load(out, weights_only=True)
    assert set(exported) == {'meta', 'state_dict'}
    assert exported['meta'] == dict(
        epoch=3, iter=30, dataset_meta=dict(classes=['a', 'b']))
    assert list(exported['state_dict']) == list(state)
    for name, value in state.items():
        assert torch.equal(exported['state_dict'][name], value), name
    # the module versions (read by BN when loading) follow the modules
    assert exported['state_dict']._metadata == state._metadata

    # loads strictly into the student's vanilla config
    fresh = build_vanilla(STUDENT_CFG)
    load_checkpoint(fresh, out, strict=True)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_out_path_folder_or_file(student, tmp_path):
    _, state = student
    src = str(tmp_path / 'best.pth')
    torch.save(distill_checkpoint(state), src)
    assert tool.main([src, '--out-path', str(tmp_path / 'new')]) == 0
    assert osp.isfile(tmp_path / 'new' / 'student_best.pth')
    assert tool.main([src, '--out-path', str(tmp_path / 'r20.pth')]) == 0
    assert osp.isfile(tmp_path / 'r20.pth')
    # nothing left behind by the atomic write
    assert sorted(os.listdir(tmp_path)) == ['best.pth', 'new', 'r20.pth']


def test_baseline_checkpoint(tmp_path):
    """MMRazor's SingleTeacherDistill keeps its student the same way."""
    src = str(tmp_path / 'kd.pth')
    torch.save(
        dict(
            meta={},
            state_dict={
                'architecture.head.fc.bias': torch.arange(3.),
                'teacher.head.fc.bias': torch.zeros(3)
            }), src)
    assert tool.main([src]) == 0
    exported = torch.load(str(tmp_path / 'student_kd.pth'), weights_only=True)
    assert list(exported['state_dict']) == ['head.fc.bias']
    assert torch.equal(exported['state_dict']['head.fc.bias'],
                       torch.arange(3.))


def _fails(argv, capsys):
    assert tool.main(argv) == 1
    return capsys.readouterr().err


def test_refuses_to_overwrite_the_input(student, tmp_path, capsys):
    _, state = student
    src = str(tmp_path / 'epoch_3.pth')
    torch.save(distill_checkpoint(state), src)
    before = open(src, 'rb').read()
    err = _fails([src, '--inplace'], capsys)
    assert '--inplace would replace' in err
    assert 'student_epoch_3.pth' in err  # where it goes without --inplace
    err = _fails([src, '--out-path', f'{tmp_path}/./epoch_3.pth'], capsys)
    assert 'is the input' in err and '--out-path' in err
    assert open(src, 'rb').read() == before
    assert os.listdir(tmp_path) == ['epoch_3.pth']


def test_single_network_checkpoint_has_no_student(tmp_path, capsys):
    src = str(tmp_path / 'resnet20.pth')
    torch.save(dict(state_dict={'backbone.stem.0.weight': torch.ones(1)}), src)
    err = _fails([src], capsys)
    assert "already a single network's checkpoint" in err
    assert 'backbone.* (1)' in err
    assert not osp.exists(tmp_path / 'student_resnet20.pth')


def test_unreadable_inputs(tmp_path, capsys):
    err = _fails([str(tmp_path / 'missing.pth')], capsys)
    assert 'no such file' in err

    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    assert 'not a valid PyTorch checkpoint' in _fails([str(corrupt)], capsys)

    # a file that would run code while being unpickled
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Exploit()}, str(evil))
    err = _fails([str(evil)], capsys)
    assert 'refused to load' in err and 'could run code' in err
    assert not osp.exists(tmp_path / 'student_evil.pth')


class Exploit:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


DEMO_SAKD = osp.join(REPO, 'configs', 'demo', 'crd_res56_res20_digits.py')
DEMO_STUDENT = osp.join(REPO, 'configs', 'demo', 'resnet20_digits.py')
TEACHER_CFG = osp.join(REPO, 'configs', 'vanilla', 'resnet56_cifar100.py')
TINY_TEST = ['test_dataloader.dataset.indices=64']


def _ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-5000:])
    return result


def _top1(result) -> float:
    found = re.findall(r'Epoch\(test\).*?accuracy/top1: ([\d.]+)',
                       result.stdout + result.stderr)
    assert len(found) == 1, result.stdout[-2000:] + result.stderr[-2000:]
    return float(found[0])


@pytest.mark.slow
def test_exported_student_tests_like_the_distillation_checkpoint(tmp_path):
    """A real SAKD run (the offline CRD + KD demo, one short epoch): its
    student, exported, loads strictly into the student's vanilla config and
    tools/test.py gives the same accuracy and the same scores."""
    teacher = str(tmp_path / 'teacher.pth')
    torch.save(
        dict(state_dict=build_vanilla(TEACHER_CFG).state_dict()), teacher)
    work_dir = str(tmp_path / 'sakd')
    _ok(
        run_tool([
            'tools/train.py', DEMO_SAKD, '--work-dir', work_dir,
            '--cfg-options', f'model.teacher_ckpt={teacher}',
            'train_cfg.max_epochs=1', 'train_dataloader.batch_size=16',
            'train_dataloader.dataset.dataset.indices=64',
            'train_dataloader.dataset.neg_num=16',
            'model.distiller.distill_losses.loss_crd.neg_num=16',
            'val_dataloader.dataset.indices=16'
        ]))
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    log = _ok(run_tool([TOOL, ckpt, '--out-path', str(tmp_path / 'out')]))
    assert 'sakd_policy.*' in log.stdout
    student = str(tmp_path / 'out' / 'student_epoch_1.pth')

    exported = torch.load(student, weights_only=True)
    assert set(exported) == {'meta', 'state_dict'}
    original = torch.load(ckpt, weights_only=True)
    assert exported['meta'] == original['meta']
    for config in (STUDENT_CFG, DEMO_STUDENT):
        load_checkpoint(build_vanilla(config), student, strict=True)

    distilled = _ok(
        run_tool([
            'tools/test.py', DEMO_SAKD, ckpt, '--work-dir',
            str(tmp_path / 'test_sakd'), '--out',
            str(tmp_path / 'sakd.pkl'), '--cfg-options',
            f'model.teacher_ckpt={teacher}', *TINY_TEST
        ]))
    alone = _ok(
        run_tool([
            'tools/test.py', DEMO_STUDENT, student, '--work-dir',
            str(tmp_path / 'test_student'), '--out',
            str(tmp_path / 'student.pkl'), '--cfg-options', *TINY_TEST
        ]))
    assert _top1(alone) == _top1(distilled)
    with open(tmp_path / 'sakd.pkl', 'rb') as f:
        expected = pickle.load(f)
    with open(tmp_path / 'student.pkl', 'rb') as f:
        got = pickle.load(f)
    assert len(got) == len(expected) == 64
    for a, b in zip(got, expected):
        assert torch.equal(a['pred_score'], b['pred_score'])


def test_test_tool_points_to_the_converter(student, tmp_path):
    """tools/test.py with the student's config and a distillation
    checkpoint names this tool."""
    _, state = student
    src = str(tmp_path / 'epoch_3.pth')
    torch.save(distill_checkpoint(state), src)
    with pytest.raises(
            CheckpointLoadError,
            match=r'architecture\.\* part fits: .* or extract the part you '
            r'mean, e\.g\. python tools/model_converters/'
            r"convert_kd_ckpt_to_student\.py '.*epoch_3\.pth' --out-path "
            r'part\.pth, and pass part\.pth as CHECKPOINT'):
        check_checkpoint_fits(build_vanilla(STUDENT_CFG), src, 'CHECKPOINT')
