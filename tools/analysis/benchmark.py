"""Measure the training step time of configs, in one run, as ratios.

Each config is trained for a few iterations through ``tools/train.py`` (the
real Runner, hooks and data pipeline) in its own process; the per-iteration
``time`` that MMEngine's ``IterTimerHook`` logs is read back, the warm-up
iterations are dropped and the median is reported, together with its ratio
to the first config. Machines are noisy: compare ratios measured in the same
run, not absolute times from different runs.

    python tools/analysis/benchmark.py CONFIG [CONFIG ...] [--iters 30]
        [--warmup 5] [--nproc 1] [--repeat 1] [--cfg-options k=v ...]
        [--out results.json]

``--nproc 2`` runs each config with torchrun and ``--launcher pytorch``
(gloo on CPU). ``--repeat`` interleaves repetitions (A B A B ...) so that a
slow phase of the machine hits every config alike.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='configs to time')
    parser.add_argument(
        '--iters', type=int, default=30, help='training iterations per run')
    parser.add_argument(
        '--warmup',
        type=int,
        default=5,
        help='first iterations left out of the median')
    parser.add_argument(
        '--nproc',
        type=int,
        default=1,
        help='processes per run (torchrun when > 1)')
    parser.add_argument(
        '--repeat',
        type=int,
        default=1,
        help='interleaved repetitions of every config')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='override train_dataloader.batch_size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for every config')
    parser.add_argument('--out', help='write the results to this JSON file')
    # internal: one timed run, started by the parent process
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--work-dir', help=argparse.SUPPRESS)
    parser.add_argument('--launcher', default='none', help=argparse.SUPPRESS)
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.configs and not args.worker:
        parser.error('give at least one config')
    if args.iters <= args.warmup:
        parser.error('--iters must be larger than --warmup')
    # the runs start in the repository root: resolve paths from here
    args.configs = [c if '::' in c else osp.abspath(c) for c in args.configs]
    for config in args.configs:
        if '::' not in config and not osp.isfile(config):
            parser.error(f'config {config!r} does not exist (paths are '
                         f'relative to {os.getcwd()})')
    return args


def _command(config: str, work_dir: str, args) -> list:
    worker = [
        osp.abspath(__file__), '--worker', config, '--work-dir', work_dir,
        '--iters',
        str(args.iters), '--warmup',
        str(args.warmup)
    ]
    if args.batch_size:
        worker += ['--batch-size', str(args.batch_size)]
    if args.cfg_options:
        worker += ['--cfg-options', *args.cfg_options]
    if args.nproc == 1:
        return [sys.executable, *worker]
    return [
        sys.executable, '-m', 'torch.distributed.run',
        f'--nproc_per_node={args.nproc}', f'--master_port={_free_port()}',
        *worker, '--launcher', 'pytorch'
    ]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_worker(args) -> None:
    """Train ``args.iters`` iterations of one config (inside this process)."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # noqa: E402  (imports mmsakd first)
    from mmengine.runner import Runner

    cfg = train.load_config(args.worker)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir
    cfg.train_cfg = dict(
        by_epoch=False, max_iters=args.iters, val_interval=args.iters + 1)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=args.iters + 1,
        by_epoch=False,
        save_last=False)
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    if args.cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument(
            '--cfg-options', nargs='+', action=train.CfgOptionsAction)
        train.merge_cfg_options(
            cfg,
            parser.parse_args(['--cfg-options',
                               *args.cfg_options]).cfg_options)
    train.check_teacher_ckpt(cfg)
    Runner.from_cfg(cfg).train()
    train.teardown_dist()


def _iteration_times(work_dir: str) -> list:
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    # rank 0 logs the iteration time of its own process
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [r['time'] for r in rows if 'time' in r and 'loss' in r]


def run_once(config: str, args) -> list:
    with tempfile.TemporaryDirectory() as work_dir:
        result = subprocess.run(
            _command(config, work_dir, args),
            cwd=REPO,
            capture_output=True,
            text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-2000:] + result.stderr[-4000:])
            raise RuntimeError(f'training {config} failed')
        times = _iteration_times(work_dir)
    if len(times) <= args.warmup:
        raise RuntimeError(
            f'{config}: only {len(times)} iterations were logged, fewer '
            'than --warmup')
    return times[args.warmup:]


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    samples = {c: [] for c in args.configs}
    for _ in range(args.repeat):
        for config in args.configs:
            samples[config] += run_once(config, args)
    base = statistics.median(samples[args.configs[0]])
    results = {}
    print(f'{"config":60s} {"s/iter":>8s} {"ratio":>6s}  (median of '
          f'{args.iters - args.warmup} x {args.repeat}, nproc {args.nproc})')
    for config, times in samples.items():
        median = statistics.median(times)
        results[config] = dict(
            median_s_per_iter=median,
            ratio=median / base,
            n=len(times),
            nproc=args.nproc)
        print(f'{osp.relpath(config, REPO):60s} {median:8.4f} '
              f'{median / base:6.2f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
