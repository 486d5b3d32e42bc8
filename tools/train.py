"""Train a model (a distillation algorithm or a plain classifier) with
MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]]
        [--amp] [--auto-scale-lr] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import contextlib
import os
import os.path as osp
import sys

# mmsakd first: its compatibility layer must run before anything imports
# mmrazor.models, and it makes `mmsakd::` config paths resolvable.
try:
    import mmsakd  # noqa: F401,E402  isort:skip
except ModuleNotFoundError as e:  # a fresh clone, before the install step
    if e.name != 'mmsakd':
        raise
    sys.exit(f'mmsakd is not installed for {sys.executable}: run `bash '
             'tools/setup_env.sh` (or `pip install -e .`) in the repository '
             'and use its .venv/bin/python.')

from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmsakd.compat import checkpoint_is_intact, not_a_regular_file  # noqa
from mmsakd.utils import check_num_classes  # noqa
from mmsakd.utils import (CfgOptionsAction, WorkDirLock, WorkDirLocked,
                          check_teacher_ckpt, exit_with_launcher,
                          global_rank_from_env, launcher_problem, load_config,
                          merge_cfg_options, teardown_dist)
from mmsakd.utils.config_checks import checkpoint_errors_name_keys  # noqa
from mmsakd.utils.stalled_ranks import name_stalled_ranks  # noqa

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a value, resume from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not validate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='set pin_memory=False in all dataloaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='set persistent_workers=False in all dataloaders')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override settings of the config, key=value pairs in '
        'xxx=yyy format; lists as key="[a,b]" or key=a,b, nested as '
        'key="[(a,b),(c,d)]" (quotes required, no spaces)')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); accept both
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge the command-line arguments into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(
                '--amp works with optim_wrapper.type="OptimWrapper" (or '
                f'"AmpOptimWrapper"), got {optim_wrapper!r}; set the '
                'optimizer wrapper in the config instead of using --amp.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise ValueError(
                '--auto-scale-lr needs `auto_scale_lr = dict('
                'base_batch_size=N)` in the config (N = the total batch size '
                'the learning rate was tuned for).')
        cfg.auto_scale_lr.enable = True

    def set_dataloader(key, value):
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name, None)
            if isinstance(loader, (dict, ConfigDict)):
                loader[key] = value

    if args.no_pin_memory:
        set_dataloader('pin_memory', False)
    if args.no_persistent_workers:
        set_dataloader('persistent_workers', False)

    return merge_cfg_options(cfg, args.cfg_options)


def check_resume(cfg: Config) -> None:
    """A checkpoint named for resuming (``--resume PATH``, or ``resume=True``
    with ``load_from``) must exist and be intact: fail before training
    instead of starting from scratch or crashing after the build."""
    path = cfg.get('load_from', None)
    if not cfg.get('resume', False) or path is None or '://' in str(path):
        return
    fix = ('Pass an existing checkpoint, or --resume without a value to '
           'resume the newest intact checkpoint of the work dir '
           f'({cfg.work_dir}).')
    kind = not_a_regular_file(path)
    if kind == 'missing':
        raise FileNotFoundError(f'--resume {path}: no such checkpoint file. '
                                f'{fix}')
    if kind is not None:  # a FIFO would block, /dev/zero read for ever
        raise ValueError(f'--resume {path}: it is {kind}, not a regular '
                         f'checkpoint file. {fix}')
    if not checkpoint_is_intact(path):
        raise ValueError(
            f'--resume {path}: the checkpoint is truncated or corrupt. {fix}')


def dist_timeout(cfg: Config):
    """The process group's timeout (seconds) the config sets, if any."""
    return (cfg.get('env_cfg', None) or {}).get('dist_cfg', {}).get('timeout')


def main(argv=None) -> None:
    args = parse_args(argv)
    if launcher_problem(args.launcher):
        sys.exit(f'error: {launcher_problem(args.launcher)}')
    if args.launcher == 'pytorch':
        exit_with_launcher()
    cfg = merge_args(load_config(args.config), args)
    check_teacher_ckpt(cfg)
    check_resume(cfg)
    # one run per work dir; rank 0 holds the lock for the whole job
    lock = WorkDirLock(cfg.work_dir) if global_rank_from_env() == 0 \
        else contextlib.nullcontext()
    try:
        with lock, checkpoint_errors_name_keys(cfg):
            runner = Runner.from_cfg(cfg)
            check_num_classes(runner.model, cfg)
            with name_stalled_ranks(dist_timeout(cfg)):
                runner.train()
    except WorkDirLocked as error:
        sys.exit(f'error: {error}')
    teardown_dist()


if __name__ == '__main__':
    if os.environ.get('TORCHELASTIC_ERROR_FILE'):
        # started by torchrun: its failure summary shows this rank's error
        # (e.g. which rank stalled) instead of a bare exit code
        from torch.distributed.elastic.multiprocessing.errors import record
        main = record(main)
    sys.exit(main())
