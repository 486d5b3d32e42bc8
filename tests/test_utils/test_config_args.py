import argparse
import time

import pytest
from mmengine.config import Config

from mmsakd.utils import (CfgOptionsAction, launcher_problem, load_config,
                          merge_cfg_options)
from tests.helpers import REPO

SAKD_CFG = f'{REPO}/configs/sakd/crd_res56_res20.py'


def _parse(*items):
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *items]).cfg_options


def test_syntax_error_in_a_base_file_names_that_file(tmp_path):
    (tmp_path / 'base.py').write_text('a = 1\nx = (\n')
    (tmp_path / 'child.py').write_text("_base_ = ['./base.py']\ny = 1\n")
    with pytest.raises(SyntaxError) as e:
        load_config(str(tmp_path / 'child.py'))
    msg = str(e.value)
    assert f'syntax error in config file {tmp_path}/base.py, line 2' in msg
    assert '<unknown>' not in msg


def test_syntax_error_in_the_config_itself(tmp_path):
    (tmp_path / 'bad.py').write_text('model = dict(type=)\n')
    with pytest.raises(
            SyntaxError, match=f'config file {tmp_path}/bad.py, line 1'):
        load_config(str(tmp_path / 'bad.py'))


def test_missing_config_names_the_path(tmp_path):
    with pytest.raises(
            FileNotFoundError, match="config file 'nope.py' does not exist"):
        load_config('nope.py')


def test_item_without_equals_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        _parse('train_cfg.max_epochs=2', 'model.teacher_ckpt')
    err = capsys.readouterr().err
    assert "--cfg-options 'model.teacher_ckpt': expected KEY=VALUE" in err


@pytest.mark.parametrize('value', ["{'gamma':2}", 'dict(gamma=2)'])
def test_dict_literal_is_refused_at_once(capsys, value):
    start = time.monotonic()
    with pytest.raises(SystemExit):
        _parse(f'model.sakd={value}')
    assert time.monotonic() - start < 1
    err = capsys.readouterr().err
    assert 'model.sakd=' in err and 'set the keys one by one' in err


@pytest.fixture(scope='module')
def sakd_cfg():
    return Config.fromfile(SAKD_CFG)


@pytest.mark.parametrize('item, expected', [
    ('train_cfg.max_epochs=abc',
     "train_cfg.max_epochs='abc': expected a number (the config has "
     'train_cfg.max_epochs=240); e.g. --cfg-options '
     'train_cfg.max_epochs=240'),
    ('optim_wrapper.optimizer.lr=fast',
     "optim_wrapper.optimizer.lr='fast': expected a number (the config "
     'has optim_wrapper.optimizer.lr=0.05)'),
    ('model.sakd.gamma=abc',
     "model.sakd.gamma='abc': expected a number (the config has "
     'model.sakd.gamma=1.0)'),
    ('train_dataloader.batch_size=[1,2]',
     'train_dataloader.batch_size=[1, 2]: expected a number'),
    ('param_scheduler.milestones=[150,x]', "expected a list of numbers"),
])
def test_wrong_value_types_name_key_value_and_fix(sakd_cfg, item, expected):
    cfg = sakd_cfg.copy()
    with pytest.raises(ValueError) as e:
        merge_cfg_options(cfg, _parse(item))
    assert expected in str(e.value)


def test_right_value_types_merge(sakd_cfg):
    cfg = merge_cfg_options(
        sakd_cfg.copy(),
        _parse('train_cfg.max_epochs=3', 'model.sakd.gamma=2.5',
               'optim_wrapper.optimizer.lr=0.1', 'model.teacher_ckpt=x.pth',
               'model.sakd.hinge=False'))
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.sakd.gamma == 2.5
    assert cfg.optim_wrapper.optimizer.lr == 0.1
    assert cfg.model.teacher_ckpt == 'x.pth'


def test_keys_the_config_leaves_unset_take_the_parsed_values(sakd_cfg):
    cfg = merge_cfg_options(
        sakd_cfg.copy(),
        _parse('model.sakd.routing_loss_weight=0.5', 'model.sakd.mode=x',
               'model.sakd.steps=[1,2]', 'model.sakd.skip=True'))
    assert cfg.model.sakd.routing_loss_weight == 0.5
    assert cfg.model.sakd.mode == 'x' and cfg.model.sakd.steps == [1, 2]
    assert cfg.model.sakd.skip is True
    # a key's name does not make it a number: only the config's value does
    cfg = merge_cfg_options(
        sakd_cfg.copy(),
        _parse('model.extra.momentum=nesterov',
               'model.extra.milestones=[early,late]'))
    assert cfg.model.extra.momentum == 'nesterov'
    assert cfg.model.extra.milestones == ['early', 'late']


@pytest.mark.parametrize('launcher, variable',
                         [('pytorch', 'RANK'), ('slurm', 'SLURM_PROCID'),
                          ('mpi', 'OMPI_COMM_WORLD_RANK')])
def test_launcher_without_its_environment(monkeypatch, launcher, variable):
    monkeypatch.delenv(variable, raising=False)
    problem = launcher_problem(launcher)
    assert f'--launcher {launcher} needs' in problem and variable in problem
    assert 'drop --launcher' in problem


def test_launcher_with_its_environment(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.setenv(name, '0')
    assert launcher_problem('pytorch') is None
    assert launcher_problem('none') is None
