"""Evaluate a checkpoint with MMEngine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

For a distillation config the test loop evaluates the student (MMRazor's
``SingleTeacherDistillValLoop`` also reports the teacher when it is used as
``test_cfg``).
"""
import argparse
import os
import os.path as osp
import sys

try:
    import mmsakd  # noqa: F401,E402  isort:skip  (compat layer first)
except ModuleNotFoundError as e:  # a fresh clone, before the install step
    if e.name != 'mmsakd':
        raise
    sys.exit(f'mmsakd is not installed for {sys.executable}: run `bash '
             'tools/setup_env.sh` (or `pip install -e .`) in the repository '
             'and use its .venv/bin/python.')

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmsakd.compat import check_checkpoint_fits, not_a_regular_file  # noqa
from mmsakd.utils import (CfgOptionsAction, exit_with_launcher,
                          launcher_problem, load_config, merge_cfg_options,
                          teardown_dist)
from mmsakd.utils.config_checks import checkpoint_errors_name_keys  # noqa

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must be a .pkl file, got {args.out!r}')
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    kind = not_a_regular_file(args.checkpoint)
    if kind not in (None, 'missing'):
        raise ValueError(f'checkpoint {args.checkpoint!r} is {kind}, not a '
                         'regular file; pass the path of a .pth file '
                         'written by tools/train.py')
    if kind == 'missing':
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist; pass the path '
            'of a .pth file written by tools/train.py')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if cfg.get('test_dataloader', None) is None:
        # configs that only define validation are tested on that split
        for key in ('dataloader', 'evaluator'):
            cfg[f'test_{key}'] = cfg.get(f'val_{key}')
    if cfg.get('test_cfg', None) is None:
        cfg.test_cfg = dict(type='TestLoop')
    if args.out is not None:
        evaluator = cfg.test_evaluator
        if not isinstance(evaluator, list):
            evaluator = [evaluator]
        cfg.test_evaluator = list(evaluator) + [
            dict(type='mmpretrain.DumpResults', out_file_path=args.out)
        ]
    return merge_cfg_options(cfg, args.cfg_options)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if launcher_problem(args.launcher):
        sys.exit(f'error: {launcher_problem(args.launcher)}')
    if args.launcher == 'pytorch':
        exit_with_launcher()
    cfg = merge_args(load_config(args.config), args)
    with checkpoint_errors_name_keys(cfg):
        runner = Runner.from_cfg(cfg)
        # the Runner loads non-strictly: a checkpoint of another model would
        # leave it random and still "evaluate"
        check_checkpoint_fits(runner.model, args.checkpoint, 'CHECKPOINT')
        metrics = runner.test()
    teardown_dist()
    return metrics


if __name__ == '__main__':
    main()
    sys.exit(0)
