"""Measure the training step time of configs, in one run, as ratios.

Each config is trained for a few iterations through ``tools/train.py``'s
pieces (the real Runner, hooks and data pipeline) in its own process; the
per-iteration ``time`` that MMEngine's ``IterTimerHook`` logs is read back,
the warm-up iterations are dropped and the median is reported, together with
its ratio to the first config and the machine's torch thread count. Runs are
alternated (A B A B ..., ``--repeat`` rounds) so that a slow phase of a
shared machine hits every config alike; the ratio of each round is kept in
the JSON output too. Compare ratios measured in the same run, not absolute
times from different runs.

    python tools/analysis/benchmark.py CONFIG [CONFIG ...] [--iters 30]
        [--warmup 5] [--repeat 3] [--threads N] [--nproc 1] [--memory]
        [--profile [ITERS]] [--batch-size B] [--cfg-options k=v ...]
        [--json results.json]

``--memory`` reports each config's peak memory, read inside its own
training process (so peaks of different configs never mix): the peak
resident set size (``ru_maxrss``) on the CPU, and
``torch.cuda.max_memory_allocated`` on a GPU. ``--profile`` runs each config
once more and profiles ``ITERS`` steady-state iterations (after the warm-up)
with MMEngine's ``ProfilerHook``; the table of the top ops by self CPU time
(and self CUDA time on a GPU) is printed, and the ops are in the JSON output.
The profiled runs are not timed. ``--nproc 2`` runs each config with
torchrun and ``--launcher pytorch`` (gloo on CPU); memory and profile are
those of rank 0.

Besides the iteration time (``s/iter``: data loading, hooks and the step),
the time of the model's ``train_step`` alone is reported (``s/step``:
forward, backward and optimizer step).

``--teacher-labels`` (distillation configs) makes an untrained teacher
behave like a trained one for the step's control flow: before training,
the teacher's BatchNorm statistics are calibrated (MMRazor's
``CalibrateBNMixin``) on the first ``--calibrate-batches`` training batches
of every process, and before each step a
no-grad teacher pass labels the batch with the teacher's predictions, so
that the teacher is right on every sample and a spot-adaptive policy stays
in its distill-everywhere start (the setup in which SAKD's step costs the
most). That labelling pass is counted in ``s/iter`` but not in ``s/step``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STATS = 'benchmark_stats.json'


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
        default=3,
        help='rounds of runs, alternated A B A B ...')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads of each run (default: torch\'s)')
    parser.add_argument(
        '--memory',
        action='store_true',
        help='report the peak memory of each config')
    parser.add_argument(
        '--profile',
        type=int,
        nargs='?',
        const=5,
        default=0,
        metavar='ITERS',
        help='profile ITERS steady-state iterations of each config (5 '
        'without a value) in one extra run per config')
    parser.add_argument(
        '--profile-rows',
        type=int,
        default=15,
        help='rows of the profiler tables')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='override train_dataloader.batch_size')
    parser.add_argument(
        '--teacher-labels',
        action='store_true',
        help='calibrate the teacher\'s BN statistics and label each batch '
        'with the teacher\'s predictions (distillation configs)')
    parser.add_argument(
        '--calibrate-batches',
        type=int,
        default=10,
        help='training batches that calibrate the teacher\'s BN statistics '
        'with --teacher-labels')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides for every config')
    parser.add_argument(
        '--json',
        '--out',
        dest='out',
        metavar='PATH',
        help='write the results to this JSON file')
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
    for key in ('repeat', 'nproc', 'threads', 'profile_rows',
                'calibrate_batches'):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1, got '
                         f'{value}')
    if args.profile < 0:
        parser.error(f'--profile must be >= 1 iterations, got {args.profile}')
    # the runs start in the repository root: resolve paths from here
    args.configs = [c if '::' in c else osp.abspath(c) for c in args.configs]
    for config in args.configs:
        if '::' not in config and not osp.isfile(config):
            parser.error(f'config {config!r} does not exist (paths are '
                         f'relative to {os.getcwd()})')
    return args


def _command(config: str, work_dir: str, args, profile: int = 0) -> list:
    # a profiled run: the warm-up, then the profiled iterations only
    iters = args.warmup + profile if profile else args.iters
    worker = [
        osp.abspath(__file__), '--worker', config, '--work-dir', work_dir,
        '--iters',
        str(iters), '--warmup',
        str(args.warmup), '--profile',
        str(profile), '--profile-rows',
        str(args.profile_rows)
    ]
    if args.threads:
        worker += ['--threads', str(args.threads)]
    if args.batch_size:
        worker += ['--batch-size', str(args.batch_size)]
    if args.teacher_labels:
        worker += [
            '--teacher-labels', '--calibrate-batches',
            str(args.calibrate_batches)
        ]
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


def _calibrate_bn(teacher, batches, num_samples: int) -> int:
    """Calibrate the BatchNorm statistics of ``teacher`` on the first
    ``num_samples`` samples (of all processes) of ``batches`` (preprocessed
    inputs) with MMRazor's ``CalibrateBNMixin``; the number of BN layers.

    The mixin averages the batches' means and unbiased variances weighted by
    batch size (for batches of one size, PyTorch's ``momentum=None``). It runs
    ``runner.model.test_step`` and leaves that model in train mode: here the
    model is the teacher, its step the tensor forward, and the modes are
    restored."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger
    from mmrazor.engine.runner.utils import CalibrateBNMixin
    from torch.nn.modules.batchnorm import _BatchNorm

    modes = [(m, m.training) for m in teacher.modules()]
    calibration = CalibrateBNMixin()
    calibration.runner = SimpleNamespace(
        model=SimpleNamespace(
            named_modules=teacher.named_modules,
            train=teacher.train,
            test_step=lambda inputs: teacher(inputs, mode='tensor'),
            device=next(teacher.parameters()).device),
        logger=MMLogger.get_current_instance())
    try:
        calibration.calibrate_bn_statistics(batches, num_samples)
    finally:
        for module, mode in modes:
            module.training = mode
    return sum(isinstance(m, _BatchNorm) for m in teacher.modules())


def _label_with(teacher, preprocess, data: dict) -> None:
    """Replace the labels of the batch ``data`` (as the dataloader gives
    it) with the teacher's predictions."""
    import torch
    with torch.no_grad():
        logits = teacher(preprocess(data, False)['inputs'], mode='tensor')
    for sample, label in zip(data['data_samples'],
                             logits.argmax(dim=1).tolist()):
        sample.set_gt_label(label)


def _teacher_of(runner):
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    teacher = getattr(model, 'teacher', None)
    if teacher is None:
        raise RuntimeError(
            f'--teacher-labels needs a distillation config (a model with a '
            f'teacher); {type(model).__name__} has none')
    return model, teacher


def _worker_hook(stats: dict,
                 teacher_labels: bool = False,
                 calibrate_batches: int = 10):
    """A Runner hook that times each ``train_step`` into
    ``stats['step_times']`` and resets the peak resident memory at the first
    iteration (after the model and data were loaded). With
    ``teacher_labels``, it calibrates the teacher's BN statistics before
    training and labels every batch with the teacher's predictions before
    its (timed) step."""
    import functools
    import time

    import torch
    from mmengine.dist import get_world_size
    from mmengine.hooks import Hook

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    class BenchmarkWorker(Hook):

        def before_train(self, runner):
            stats['step_times'] = []
            model = runner.model
            train_step = model.train_step
            labeller = None
            if teacher_labels:
                algorithm, teacher = _teacher_of(runner)
                preprocess = algorithm.data_preprocessor
                loader = runner.train_dataloader
                stats['calibrated_bn_layers'] = _calibrate_bn(
                    teacher,
                    (preprocess(data, False)['inputs'] for data in loader),
                    calibrate_batches * loader.batch_size * get_world_size())
                labeller = functools.partial(_label_with, teacher, preprocess)

            def timed_train_step(data, optim_wrapper):
                if labeller is not None:
                    labeller(data)
                sync()
                start = time.perf_counter()
                out = train_step(data, optim_wrapper=optim_wrapper)
                sync()
                stats['step_times'].append(time.perf_counter() - start)
                return out

            model.train_step = timed_train_step

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if batch_idx == 0:
                stats['peak_before_reset'] = _reset_peak_rss()

    return BenchmarkWorker()


def _profiler_hook(stats: dict, warmup: int, iters: int, rows: int):
    """MMEngine's ``ProfilerHook`` over the ``iters`` iterations after the
    first ``warmup`` ones (the last of which warms the profiler up).

    When it stops, ``stats['profile']`` gets :func:`_profile_summary` of the
    profiler it created: the hook prints one table (``log_trace``) or
    exports traces, but gives neither the ops as data nor several tables.
    The schedule adds a ``ProfilerStep*`` row (a call per iteration) whose
    self time is what ran outside the ops (Python, hooks, data loading).
    """
    import torch
    from mmengine.hooks import ProfilerHook

    def summarize(profiler):
        stats['profile'] = _profile_summary(profiler.key_averages(), iters,
                                            rows)

    return ProfilerHook(
        by_epoch=False,
        profile_times=warmup + iters,
        activity_with_cuda=torch.cuda.is_available(),
        schedule=dict(
            wait=max(warmup - 1, 0),
            warmup=min(warmup, 1),
            active=iters,
            repeat=1),
        on_trace_ready=summarize)


def _profile_summary(events, iters: int, rows: int) -> dict:
    """The profiler's tables of the top ``rows`` ops by self CPU time (and
    self CUDA time when there is any), and the same ops as JSON rows, in
    microseconds per profiled iteration."""
    keys = ['self_cpu_time_total']
    if any(e.self_device_time_total > 0 for e in events):
        keys.append('self_device_time_total')
    top_ops = {}
    for key in keys:
        ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)
        top_ops[key] = [
            dict(
                name=e.key,
                calls_per_iter=e.count / iters,
                self_us_per_iter=getattr(e, key) / iters)
            for e in ranked[:rows]
        ]
    return dict(
        iters=iters,
        tables={
            key: events.table(sort_by=key, row_limit=rows)
            for key in keys
        },
        top_ops=top_ops)


def _rss_peak_mib() -> float:
    """The peak resident set size (``ru_maxrss``: KiB on Linux, bytes on
    macOS) in MiB."""
    import resource
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss * (1 if sys.platform == 'darwin' else 1024) / 2**20


def _reset_peak_rss() -> Optional[float]:
    """Reset this process's peak resident set size (Linux's ``VmHWM``, which
    ``ru_maxrss`` follows); the peak before, or None where the system
    cannot reset it."""
    before = _rss_peak_mib()
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    return before


def _peak_memory(peak_before_reset: Optional[float]) -> dict:
    """This process's peak memory in MiB.

    On a GPU, both numbers are ``torch.cuda.max_memory_allocated``. On the
    CPU, ``peak_mib`` is the peak resident set size of the whole process,
    loading the data included; ``training_peak_mib`` is the peak since
    :func:`_reset_peak_rss` returned ``peak_before_reset`` (model, data,
    activations, gradients, optimizer state), None where it could not reset
    it.
    """
    import torch
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
        return dict(
            kind='cuda_max_allocated', peak_mib=peak, training_peak_mib=peak)
    if peak_before_reset is None:
        return dict(
            kind='peak_rss', peak_mib=_rss_peak_mib(), training_peak_mib=None)
    with open('/proc/self/status') as f:
        (line, ) = (x for x in f if x.startswith('VmHWM:'))
    training = int(line.split()[1]) / 1024  # kB
    return dict(
        kind='peak_rss',
        peak_mib=max(peak_before_reset, training),
        training_peak_mib=training)


def run_worker(args) -> None:
    """Train ``args.iters`` iterations of one config (inside this process)
    and write its thread count, peak memory and profile to
    ``<work dir>/benchmark_stats.json``."""
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.dist import get_rank
    from mmengine.runner import Runner

    from mmsakd.utils import (CfgOptionsAction, check_teacher_ckpt,
                              load_config, merge_cfg_options, teardown_dist)
    cfg = load_config(args.worker)
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
            '--cfg-options', nargs='+', action=CfgOptionsAction)
        merge_cfg_options(
            cfg,
            parser.parse_args(['--cfg-options',
                               *args.cfg_options]).cfg_options)
    check_teacher_ckpt(cfg)
    runner = Runner.from_cfg(cfg)
    stats = dict(
        threads=torch.get_num_threads(),
        device='cuda' if torch.cuda.is_available() else 'cpu')
    runner.register_hook(
        _worker_hook(stats, args.teacher_labels, args.calibrate_batches),
        priority='VERY_LOW')
    if args.profile:
        runner.register_hook(
            _profiler_hook(stats, args.warmup, args.profile,
                           args.profile_rows))
    runner.train()
    stats['memory'] = _peak_memory(stats.get('peak_before_reset'))
    if get_rank() == 0:
        with open(osp.join(args.work_dir, STATS), 'w') as f:
            json.dump(stats, f)
    teardown_dist()


def _iteration_times(work_dir: str) -> list:
    from mmsakd.utils import load_scalars

    # rank 0 logs the iteration time of its own process
    return [
        r['time'] for r in load_scalars(work_dir)
        if 'time' in r and 'loss' in r
    ]


def run_once(config: str, args, profile: int = 0) -> tuple:
    """Train ``config`` in a new process; its iteration times after the
    warm-up and what the worker measured (threads, memory, profile)."""
    with tempfile.TemporaryDirectory() as work_dir:
        result = subprocess.run(
            _command(config, work_dir, args, profile),
            cwd=REPO,
            capture_output=True,
            text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-2000:] + result.stderr[-4000:])
            raise RuntimeError(f'training {config} failed')
        times = _iteration_times(work_dir)
        with open(osp.join(work_dir, STATS)) as f:
            stats = json.load(f)
    if len(times) <= args.warmup:
        raise RuntimeError(
            f'{config}: only {len(times)} iterations were logged, fewer '
            'than --warmup')
    stats['step_times'] = stats.get('step_times', [])[args.warmup:]
    return times[args.warmup:], stats


def _name(config: str) -> str:
    return config if '::' in config else osp.relpath(config, REPO)


def _ratio(value: float, base: float) -> float:
    return value / base if value and base else None


def _fmt(value: float, width: int, digits: int) -> str:
    return f'{"-":>{width}s}' if value is None else \
        f'{value:{width}.{digits}f}'


def _max_of(runs: list, key: str) -> float:
    """The largest ``key`` of the runs, None if a run lacks it."""
    values = [run[key] for run in runs]
    return None if None in values else max(values)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    configs = list(dict.fromkeys(args.configs))  # the same config is pooled
    samples = {c: [] for c in configs}
    steps = {c: [] for c in configs}  # train_step alone
    rounds = {c: [] for c in configs}  # the median of each run, by round
    memory = {c: [] for c in configs}
    order, stats = [], {}
    for _ in range(args.repeat):
        for config in args.configs:  # A B A B ...
            times, stats = run_once(config, args)
            order.append(config)
            samples[config] += times
            steps[config] += stats.get('step_times', [])
            rounds[config].append(statistics.median(times))
            memory[config].append(stats['memory'])
    profiles = {
        c: run_once(c, args, args.profile)[1]['profile']
        for c in configs
    } if args.profile else {}

    base = statistics.median(samples[configs[0]])
    with_steps = all(steps.values())
    base_step = statistics.median(steps[configs[0]]) if with_steps else None
    results = dict(
        threads=stats['threads'],
        cpu_count=os.cpu_count(),
        device=stats['device'],
        nproc=args.nproc,
        teacher_labels=args.teacher_labels,
        order=[_name(c) for c in order],
        configs={})
    print(f'{len(order)} runs alternated (A B A B ...), median of '
          f'{args.iters - args.warmup} iterations after {args.warmup} '
          f'warm-up ones per run; torch threads {results["threads"]} of '
          f'{results["cpu_count"]} CPUs, nproc {args.nproc}, '
          f'{results["device"]}')
    if args.teacher_labels:
        print('teacher labels: BN statistics calibrated, each batch labelled '
              'by the teacher (counted in s/iter, not in s/step)')
    header = f'{"config":50s} {"s/iter":>8s} {"ratio":>6s}'
    if with_steps:
        header += f' {"s/step":>8s} {"ratio":>6s}'
    if args.memory:
        print(f'peak MiB: {stats["memory"]["kind"]} of each training '
              'process; train: the same from its first iteration on')
        header += f' {"peak MiB":>9s} {"ratio":>6s} {"train":>9s} ' \
            f'{"ratio":>6s}'
    print(header)
    for config in configs:
        median = statistics.median(samples[config])
        entry = dict(
            median_s_per_iter=median,
            ratio=median / base,
            n=len(samples[config]),
            run_medians_s=rounds[config],
            # same-round ratios to the first config: their spread shows how
            # much the machine drifted during the run
            round_ratios=[
                m / b for m, b in zip(rounds[config], rounds[configs[0]])
            ])
        row = f'{_name(config):50s} {median:8.4f} ' \
            f'{median / base:6.2f}'
        if with_steps:
            step = statistics.median(steps[config])
            entry.update(
                median_s_per_step=step,
                step_ratio=step / base_step,
                n_steps=len(steps[config]))
            row += f' {step:8.4f} {step / base_step:6.2f}'
        if args.memory:
            entry['memory'] = dict(kind=stats['memory']['kind'])
            for key in ('peak_mib', 'training_peak_mib'):
                peak, base_peak = (
                    _max_of(memory[c], key) for c in (config, configs[0]))
                ratio = _ratio(peak, base_peak)
                entry['memory'].update({key: peak, f'{key}_ratio': ratio})
                row += f' {_fmt(peak, 9, 0)} {_fmt(ratio, 6, 2)}'
        if config in profiles:
            entry['profile'] = profiles[config]
        results['configs'][_name(config)] = entry
        print(row)
    for config, profile in profiles.items():
        for key, table in profile['tables'].items():
            print(f'\n{_name(config)}: top ops by '
                  f'{key.replace("_total", "")}, {profile["iters"]} '
                  f'iterations after the warm-up\n{table}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
