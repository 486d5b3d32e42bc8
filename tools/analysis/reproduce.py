"""Reproduce a distiller's results: teacher, baseline and SAKD over seeds.

For a distiller and a teacher -> student pair, train (one run after another,
each through ``tools/train.py`` in its own process)

* the teacher, once (or take ``--teacher-ckpt``),
* optionally the student alone (``--methods student ...``),
* the baseline distiller (``configs/baselines/<distiller>_<pair>.py``),
* its spot-adaptive swap (``configs/sakd/<distiller>_<pair>.py``, Song et
  al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
  https://arxiv.org/abs/2205.02399),

the last three once per seed, with one schedule; read each run's final top-1
(the validation of its last epoch) from its work dir and write
``summary.md`` (mean +- sample std over seeds) and ``summary.json`` into
``--out``. For the spot-adaptive runs the summary also gives the rate of
each spot in the last epoch, and ``spot_rates.png`` / ``spot_heatmap.png``
(``tools/analysis/plot_spots.py``) are drawn into ``--out``.

    python tools/analysis/reproduce.py --distiller crd --pair res56_res20 \
        --seeds 0 1 2 --epochs 240 --out work_dirs/reproduce/crd_res56_res20 \
        [--teacher-ckpt PATH] [--methods student baseline sakd] \
        [--data-root DIR] [--no-verify-checksum] [--cfg-options k=v ...]

``QUICK=1 bash tools/quickstart.sh`` runs it offline on the digits demo, in
minutes on a CPU.

``--epochs`` sets ``train_cfg.max_epochs`` and scales the epochs of the
``MultiStepLR`` milestones with it (150/180/210 of 240 become 38/45/52 of
60). The teacher config and the student's vanilla config are the ones the
baseline builds its networks from (``model.teacher.cfg_path``,
``model.architecture.cfg_path``); ``--teacher-config``, ``--student-config``,
``--baseline-config`` and ``--sakd-config`` replace any of them.

Each run keeps its own work dir (``<out>/teacher``, ``<out>/<method>/
seed_<seed>``). Running the same command again reuses the runs that finished
and resumes the ones that were interrupted (exactly, see ``RNGStateHook``);
a work dir that holds a run with other settings is an error. The result of a
finished run is kept in its ``reproduce_result.json``, but only used while
it agrees with the metrics the run logged: one that does not is rewritten
from the logs, and one whose run has no complete logs to check it against is
ignored (the run is trained again, resumed from its last checkpoint if it
has one); both with a warning. The summary is rewritten after every run, so
an interrupted pipeline leaves a partial table.

The final top-1 is read from MMEngine's ``<work_dir>/<timestamp>/vis_data/
scalars.json`` (one per launch; a resumed run has several): the last row
with ``accuracy/top1`` must be the validation of the last epoch. The time
per iteration is the median of the ``time`` of the logged training
iterations (each MMEngine's moving average over its logging window).
"""
import argparse
import contextlib
import io
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
METHODS = ('student', 'baseline', 'sakd')
LABELS = dict(
    teacher='teacher',
    student='student alone',
    baseline='baseline',
    sakd='SAKD')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--distiller', help='distiller name, e.g. crd (with --pair)')
    parser.add_argument(
        '--pair', help='teacher_student pair, e.g. res56_res20')
    parser.add_argument('--teacher-config', help='train the teacher with it')
    parser.add_argument(
        '--teacher-ckpt',
        help='use this teacher checkpoint instead of training one')
    parser.add_argument(
        '--student-config', help="the student's vanilla config")
    parser.add_argument('--baseline-config', help='the baseline config')
    parser.add_argument('--sakd-config', help='the spot-adaptive config')
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=METHODS,
        help='runs per seed (default: baseline sakd)')
    parser.add_argument(
        '--seeds', nargs='+', type=int, help='seeds (default: 0 1 2)')
    parser.add_argument(
        '--epochs',
        type=int,
        help="training epochs of every run (default: the config's)")
    parser.add_argument(
        '--teacher-epochs',
        type=int,
        help='training epochs of the teacher (default: --epochs)')
    parser.add_argument(
        '--data-root',
        help='data_root of every dataset of the configs that has one')
    parser.add_argument(
        '--no-verify-checksum',
        action='store_true',
        help='verify_checksum=False for those datasets (a CIFAR-100 copy in '
        'the official layout that is not byte-identical to the release)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='overrides for every run')
    parser.add_argument(
        '--run-options',
        nargs='+',
        action='append',
        default=[],
        metavar='RUN KEY=VALUE',
        help='overrides for the runs of one kind: teacher, student, '
        'baseline, sakd or distill (baseline and sakd); repeatable')
    parser.add_argument('--out', help='output folder')
    parser.add_argument(
        '--title', help='the summary\'s title (default: from the configs)')
    parser.add_argument(
        '--no-print',
        action='store_true',
        help='write the summary without printing its table')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the training commands and stop')
    args = parser.parse_args(argv)

    args.methods = args.methods or ['baseline', 'sakd']
    args.seeds = args.seeds or [0, 1, 2]
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds {args.seeds}: each seed once')
    for name in ('epochs', 'teacher_epochs'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} {value}: expected an '
                         'int >= 1')
    if args.teacher_epochs is None:
        args.teacher_epochs = args.epochs
    run_options = {}
    for item in args.run_options:
        kind, options = item[0], item[1:]
        kinds = ('baseline', 'sakd') if kind == 'distill' else (kind, )
        if not set(kinds) <= {'teacher', *METHODS} or not options:
            parser.error(
                f'--run-options {" ".join(item)}: expected RUN KEY=VALUE '
                '[...], RUN one of teacher, student, baseline, sakd, distill')
        for k in kinds:
            run_options.setdefault(k, []).extend(options)
    args.run_options = run_options
    for option in args.cfg_options + sum(run_options.values(), []):
        if '=' not in option or option.startswith('='):
            parser.error(f'{option!r}: expected KEY=VALUE, e.g. '
                         'train_dataloader.batch_size=128')

    if args.distiller and args.pair:
        name = f'{args.distiller}_{args.pair}'
        args.baseline_config = args.baseline_config or \
            f'configs/baselines/{name}.py'
        args.sakd_config = args.sakd_config or f'configs/sakd/{name}.py'
    elif args.distiller or args.pair:
        parser.error('--distiller and --pair go together, e.g. '
                     '--distiller crd --pair res56_res20')
    needed = [m for m in ('baseline', 'sakd') if m in args.methods]
    if not all(getattr(args, f'{m}_config') for m in needed):
        parser.error('name the configs: --distiller crd --pair res56_res20 '
                     '(or --baseline-config and --sakd-config)')
    if not args.out:
        parser.error('--out: the folder of the runs and the summary, e.g. '
                     'work_dirs/reproduce/crd_res56_res20')
    for key in ('teacher_config', 'student_config', 'baseline_config',
                'sakd_config', 'teacher_ckpt'):
        path = getattr(args, key)
        if path and '::' not in path:
            path = _repo_or_cwd(path)
            if not osp.isfile(path):
                parser.error(f'--{key.replace("_", "-")} {path!r} does not '
                             'exist')
            setattr(args, key, path)
    args.out = osp.abspath(args.out)
    return args


def _repo_or_cwd(path: str) -> str:
    """``path`` from the working directory, else from the repository."""
    if osp.isabs(path) or osp.exists(path):
        return osp.abspath(path)
    in_repo = osp.join(REPO, path)
    return in_repo if osp.exists(in_repo) else osp.abspath(path)


def _config_path(cfg_path: str) -> str:
    """A ``mmsakd::`` config path as a file of this repository."""
    if cfg_path.startswith('mmsakd::'):
        local = osp.join(REPO, 'configs', cfg_path[len('mmsakd::'):])
        if osp.isfile(local):
            return local
    return cfg_path


def _load(path: str):
    import mmsakd  # noqa: F401  (``mmsakd::`` paths, the compat layer)
    from mmsakd.utils import load_config
    return load_config(path)


def resolve_configs(args) -> Dict[str, str]:
    """The config of each kind of run, from the arguments or the baseline's
    ``model.teacher`` / ``model.architecture``."""
    configs = dict(
        student=args.student_config,
        baseline=args.baseline_config,
        sakd=args.sakd_config)
    source = args.baseline_config or args.sakd_config
    model = _load(source).model if source else {}
    teacher = args.teacher_config
    if not teacher and not args.teacher_ckpt:
        teacher = model.get('teacher', {}).get('cfg_path')
        if not teacher:
            raise ValueError(
                f'{source}: no model.teacher.cfg_path to train the teacher '
                'from; pass --teacher-config or --teacher-ckpt')
        teacher = _config_path(teacher)
    configs['teacher'] = teacher
    if 'student' in args.methods and not configs['student']:
        student = model.get('architecture', {}).get('cfg_path')
        if not student:
            raise ValueError(
                f'{source}: no model.architecture.cfg_path for the student '
                'alone; pass --student-config')
        configs['student'] = _config_path(student)
    return {k: v for k, v in configs.items() if v}


def _datasets(cfg) -> List[tuple]:
    """``(key, dataset)`` of every dataset, wrapped ones included, of the
    train / val / test dataloaders."""
    found = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        key, node = f'{loader}.dataset', (cfg.get(loader) or {}).get('dataset')
        while isinstance(node, dict):
            found.append((key, node))
            key, node = f'{key}.dataset', node.get('dataset')
    return found


def schedule_options(cfg, epochs: Optional[int]) -> List[str]:
    """``--cfg-options`` that train ``cfg`` for ``epochs`` epochs, with its
    ``MultiStepLR`` milestones scaled by ``epochs / max_epochs``."""
    if epochs is None or epochs == cfg.train_cfg.max_epochs:
        return []
    options = [f'train_cfg.max_epochs={epochs}']
    scale = epochs / cfg.train_cfg.max_epochs
    schedulers = cfg.get('param_scheduler') or []
    is_list = isinstance(schedulers, (list, tuple))
    for i, scheduler in enumerate(schedulers if is_list else [schedulers]):
        key = f'param_scheduler.{i}' if is_list else 'param_scheduler'
        if scheduler.get('type') == 'MultiStepLR' and \
                scheduler.get('by_epoch', True):
            milestones = [
                max(1, round(m * scale)) for m in scheduler['milestones']
            ]
            options.append(f'{key}.milestones='
                           f'[{",".join(str(m) for m in milestones)}]')
        elif scheduler.get('type') != 'ConstantLR' and _fixed_span(scheduler):
            print(
                f'note: {key} ({scheduler.get("type")}) is not rescaled to '
                f'{epochs} epochs',
                file=sys.stderr)
    return options


def _fixed_span(scheduler: dict) -> bool:
    """Whether a scheduler's span is counted in epochs and does not follow
    ``max_epochs``: an ``end`` (or ``T_max``) in epochs. Without them the
    Runner ends it at ``max_epochs``; one counted in iterations (a warm-up)
    keeps its length on purpose."""
    if not scheduler.get('by_epoch', True):
        return False
    return 'end' in scheduler or 'T_max' in scheduler


def data_options(cfg, data_root: Optional[str],
                 no_verify_checksum: bool) -> List[str]:
    """Point every dataset of ``cfg`` that reads a ``data_root`` at
    ``data_root`` (and turn its checksum off)."""
    options = []
    for key, dataset in _datasets(cfg):
        if 'data_root' not in dataset:
            continue
        if data_root:
            options.append(f'{key}.data_root={osp.abspath(data_root)}')
        if no_verify_checksum:
            options.append(f'{key}.verify_checksum=False')
    return options


def describe_data(cfg) -> str:
    """The innermost datasets the config trains and validates on."""
    parts = []
    for loader in ('train_dataloader', 'val_dataloader'):
        leaves = [
            d for k, d in _datasets(cfg)
            if k.startswith(loader) and not isinstance(d.get('dataset'), dict)
        ]
        leaf = leaves[0] if leaves else {}
        text = str(leaf.get('type', '?'))
        for key in ('data_root', 'split'):
            if leaf.get(key):
                text += f' {key}={leaf[key]}'
        parts.append(f'{loader.split("_")[0]}: {text}')
    return '; '.join(parts)


def read_run(work_dir: str, max_epochs: Optional[int] = None) -> dict:
    """The final validation metrics and time per iteration of one run.

    Args:
        work_dir (str): The run's work dir.
        max_epochs (int, optional): The epoch the last validation must be
            of (the run's ``train_cfg.max_epochs``).

    Raises:
        FileNotFoundError: No ``scalars.json`` in the work dir.
        ValueError: No validation logged, or the last one is not of
            ``max_epochs``.
    """
    from mmsakd.utils import load_scalars
    rows = load_scalars(work_dir)
    vals = [r for r in rows if 'accuracy/top1' in r]
    times = [r['time'] for r in rows if 'loss' in r and 'time' in r]
    if not vals:
        raise ValueError(f'{work_dir}: no accuracy/top1 logged; the run '
                         'never validated')
    last = vals[-1]
    if max_epochs is not None and last.get('step') != max_epochs:
        raise ValueError(
            f'{work_dir}: the last validation is of epoch '
            f'{last.get("step")}, not of the last epoch {max_epochs}; the '
            'run stopped early (run the same command again to resume it)')
    return dict(
        top1=last['accuracy/top1'],
        top5=last.get('accuracy/top5'),
        epoch=last.get('step'),
        teacher_top1=last.get('teacher.accuracy/top1'),
        time_per_iter_s=statistics.median(times) if times else None)


def _same(cached, logged) -> bool:
    """Whether a cached value is the logged one (floats to rounding)."""
    if isinstance(cached, bool) or isinstance(logged, bool):
        return cached is logged
    numbers = (int, float)
    if isinstance(cached, numbers) and isinstance(logged, numbers):
        return math.isclose(cached, logged, rel_tol=1e-9, abs_tol=1e-12)
    return cached == logged


def checked_result(path: str,
                   logged: Optional[dict],
                   why: str = '') -> Optional[dict]:
    """The result cached in a run's ``reproduce_result.json``, if the
    metrics the run logged confirm it.

    Each value :func:`read_run` gives must be the logged one; other keys
    (the pipeline's ``wall_s``) are kept. A cache the logs contradict, or
    that is not a JSON object, is rewritten from ``logged``; one that
    cannot be checked (``logged`` is None) is removed. Both are warned
    about on stderr.

    Args:
        path (str): The ``reproduce_result.json`` of a run.
        logged (dict, optional): :func:`read_run` of the run, None when its
            logs are missing or incomplete.
        why (str): Why ``logged`` is None, for the warning.

    Returns:
        dict, optional: The result to use: the cache if it agrees, the
        logged metrics if it does not, None when the run must be trained
        again.
    """
    try:
        with open(path) as f:
            cached = json.load(f)
        if not isinstance(cached, dict):
            raise ValueError(f'a {type(cached).__name__}, not an object')
    except ValueError as e:
        cached, wrong = None, f'it is not a result ({e})'
    else:
        wrong = ''
    if logged is None:
        print(
            f'warning: {path} is ignored: the run has no complete logs to '
            f'check it against ({why}); training the run again',
            file=sys.stderr)
        os.remove(path)
        return None
    if cached is not None:
        wrong = ', '.join(f'{k} {cached.get(k)!r} cached, {v!r} logged'
                          for k, v in logged.items()
                          if not _same(cached.get(k), v))
        if not wrong:
            return cached
    logs = osp.join(
        osp.dirname(path), '<timestamp>', 'vis_data', 'scalars.json')
    print(
        f'warning: {path} disagrees with the metrics the run logged in '
        f'{logs}: {wrong}; using the logged ones and rewriting the file',
        file=sys.stderr)
    with open(path, 'w') as f:
        json.dump(logged, f, indent=1)
    return logged


def last_spot_rates(work_dir: str) -> Optional[Dict[str, float]]:
    """The distillation rate of every spot over the last epoch of a
    spot-adaptive run (``SpotStatisticsHook``'s last epoch row), None when
    the run wrote no statistics."""
    from tools.analysis import plot_spots
    try:
        rows = plot_spots.load_rows(work_dir)
    except plot_spots.SpotStatisticsError:
        return None
    epochs = [r for r in rows if r['kind'] == 'epoch'] or rows
    last = epochs[-1]
    return {spot: last[spot] for spot in plot_spots.spots_of(rows)}


def plot_spot_rates(sakd_runs: List[dict], out: str) -> List[str]:
    """Draw the spot-rate figures of the spot-adaptive runs into ``out``
    (``tools/analysis/plot_spots.py``); their file names, none when no run
    wrote statistics."""
    from tools.analysis import plot_spots
    runs = [r for r in sakd_runs if r.get('spot_rates')]
    if not runs:
        return []
    argv = [r['work_dir'] for r in runs]
    argv += ['--names', *[f'seed {r["seed"]}' for r in runs], '--out', out]
    argv += ['--title', 'SAKD: distillation rate per spot']
    with contextlib.redirect_stdout(io.StringIO()):
        if plot_spots.main(argv) != 0:
            return []
    return list(plot_spots.FIGURES)


class Pipeline:
    """Plans, runs and summarises the training runs of one reproduction."""

    def __init__(self, args):
        self.args = args
        self.configs = resolve_configs(args)
        self.cfgs = {k: _load(v) for k, v in self.configs.items()}
        self.rows = []
        self.figures = []

    def options(self, kind: str, epochs: Optional[int]) -> List[str]:
        args, cfg = self.args, self.cfgs[kind]
        options = schedule_options(cfg, epochs)
        options += data_options(cfg, args.data_root, args.no_verify_checksum)
        return options + args.cfg_options + args.run_options.get(kind, [])

    def epochs(self, kind: str) -> int:
        epochs = self.args.teacher_epochs if kind == 'teacher' else \
            self.args.epochs
        return epochs or self.cfgs[kind].train_cfg.max_epochs

    def command(self, kind: str, work_dir: str, seed: int,
                teacher_ckpt: Optional[str]) -> List[str]:
        options = [f'randomness.seed={seed}']
        if kind in ('baseline', 'sakd'):
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        options += self.options(
            kind, self.args.teacher_epochs
            if kind == 'teacher' else self.args.epochs)
        return [
            sys.executable, TRAIN, self.configs[kind], '--work-dir', work_dir,
            '--cfg-options', *options
        ]

    def plan(self) -> List[tuple]:
        """``(kind, seed, work_dir)`` of every run, in order: the teacher,
        then per seed the methods (a partial table compares them all)."""
        out, runs = self.args.out, []
        if not self.args.teacher_ckpt:
            runs.append(
                ('teacher', self.args.seeds[0], osp.join(out, 'teacher')))
        for seed in self.args.seeds:
            for kind in self.args.methods:
                runs.append((kind, seed, osp.join(out, kind, f'seed_{seed}')))
        return runs

    def teacher_ckpt(self) -> str:
        if self.args.teacher_ckpt:
            return self.args.teacher_ckpt
        return osp.join(self.args.out, 'teacher',
                        f'epoch_{self.epochs("teacher")}.pth')

    def train(self, kind: str, seed: int, work_dir: str) -> dict:
        """Train one run (or reuse / resume it) and read its result."""
        cmd = self.command(kind, work_dir, seed, self.teacher_ckpt())
        record = osp.join(work_dir, 'reproduce_command.json')
        done = osp.join(work_dir, 'reproduce_result.json')
        max_epochs = self.epochs(kind)
        resume = False
        if osp.isfile(record):
            with open(record) as f:
                if json.load(f) != cmd[2:]:
                    raise RuntimeError(
                        f'{work_dir} holds a {kind} run with other settings '
                        f'(see {record}); pass another --out or remove that '
                        'folder')
            try:
                logged, why = read_run(work_dir, max_epochs), ''
            except (FileNotFoundError, ValueError) as e:
                logged, why = None, str(e)
            if osp.isfile(done):
                logged = checked_result(done, logged, why)
            if logged is not None:
                return logged
            resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
        os.makedirs(work_dir, exist_ok=True)
        with open(record, 'w') as f:
            json.dump(cmd[2:], f, indent=1)
        if resume:
            cmd.append('--resume')
        log = osp.join(work_dir, 'train.log')
        start = time.time()
        with open(log, 'a') as f:
            result = subprocess.run(
                cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            with open(log) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f'{kind} seed {seed} failed (exit '
                               f'{result.returncode}); log {log}:\n{tail}')
        run = read_run(work_dir, max_epochs)
        run['wall_s'] = round(time.time() - start, 1)
        with open(done, 'w') as f:
            json.dump(run, f, indent=1)
        return run

    def run(self) -> dict:
        plan = self.plan()
        if self.args.dry_run:
            for kind, seed, work_dir in plan:
                cmd = self.command(kind, work_dir, seed, self.teacher_ckpt())
                print(' '.join(cmd[1:]))
            return {}
        os.makedirs(self.args.out, exist_ok=True)
        runs = {}
        for i, (kind, seed, work_dir) in enumerate(plan, 1):
            print(
                f'[{i}/{len(plan)}] {LABELS[kind]}, seed {seed}: '
                f'{osp.relpath(self.configs[kind], REPO)} -> {work_dir}',
                flush=True)
            run = self.train(kind, seed, work_dir)
            if kind == 'teacher' and not checkpoint_is_intact(
                    self.teacher_ckpt()):
                raise RuntimeError(
                    f'the teacher run left no intact {self.teacher_ckpt()}')
            print(f'    top-1 {run["top1"]:.2f}', flush=True)
            if kind == 'sakd':
                run['spot_rates'] = last_spot_rates(work_dir)
            runs.setdefault(kind, []).append(
                dict(seed=seed, work_dir=work_dir, **run))
            if kind == 'sakd':
                self.figures = plot_spot_rates(runs['sakd'], self.args.out)
            summary = self.summary(runs)
            write_summary(summary, self.args.out)
        return summary

    def summary(self, runs: Dict[str, list]) -> dict:
        args = self.args
        rows = []
        for kind in ('teacher', *args.methods):
            if kind == 'teacher' and args.teacher_ckpt:
                # evaluated by every distillation run's validation loop
                seen = [
                    r['teacher_top1'] for k in ('baseline', 'sakd')
                    for r in runs.get(k, []) if r.get('teacher_top1')
                ]
                rows.append(
                    dict(
                        method='teacher',
                        label=LABELS['teacher'],
                        config=None,
                        checkpoint=args.teacher_ckpt,
                        runs=[],
                        **_stats(seen[:1])))
                continue
            done = runs.get(kind, [])
            rows.append(
                dict(
                    method=kind,
                    label=LABELS[kind],
                    config=osp.relpath(self.configs[kind], REPO),
                    checkpoint=self.teacher_ckpt()
                    if kind == 'teacher' else None,
                    runs=done,
                    **_stats([r['top1'] for r in done]),
                    time_per_iter_s=_mean([r['time_per_iter_s']
                                           for r in done])))
        main = self.cfgs.get('sakd') or self.cfgs.get('baseline') or \
            self.cfgs['teacher']
        return dict(
            title=_title(args),
            data=describe_data(main),
            schedule=dict(
                epochs=self.epochs('sakd' if 'sakd' in
                                   self.cfgs else 'teacher'),
                teacher_epochs=None
                if args.teacher_ckpt else self.epochs('teacher'),
                options={
                    k:
                    self.options(
                        k,
                        args.teacher_epochs if k == 'teacher' else args.epochs)
                    for k in self.configs
                }),
            seeds=args.seeds,
            machine=_machine(),
            rows=rows,
            figures=self.figures)


def _title(args) -> str:
    if args.title:
        return args.title
    if args.distiller and args.pair:
        return f'{args.distiller}, {args.pair.replace("_", " -> ")}'
    return osp.splitext(
        osp.basename(args.sakd_config or args.baseline_config))[0]


def _stats(values: list) -> dict:
    mean = statistics.mean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else None
    return dict(n=len(values), top1_mean=mean, top1_std=std)


def _mean(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _machine() -> str:
    import torch
    if torch.cuda.is_available():
        return f'{torch.cuda.get_device_name(0)} (CUDA)'
    return f'CPU ({os.cpu_count()} cores)'


def checkpoint_is_intact(path: str) -> bool:
    from mmsakd.compat import checkpoint_is_intact as intact
    return osp.isfile(path) and intact(path)


def format_markdown(summary: dict) -> str:
    """The summary as a markdown table, mean +- std of the final top-1."""
    schedule = summary['schedule']
    data = summary['data']
    lines = [
        f'# {summary["title"]}', '', f'- data: {data}',
        f'- schedule: {schedule["epochs"]} epochs' +
        (f' (teacher {schedule["teacher_epochs"]})'
         if schedule['teacher_epochs'] else ' (teacher from a checkpoint)'),
        f'- seeds: {", ".join(str(s) for s in summary["seeds"])}',
        f'- machine: {summary["machine"]}',
        '- overrides of each run: `schedule.options` in summary.json', '',
        '| method | config | top-1 (%) | runs | per seed | s / iter |',
        '|---|---|---|---|---|---|'
    ]
    for row in summary['rows']:
        if row['top1_mean'] is None:
            top1 = '-'
        elif row['top1_std'] is None:
            top1 = f'{row["top1_mean"]:.2f}'
        else:
            top1 = f'{row["top1_mean"]:.2f} ± {row["top1_std"]:.2f}'
        seeds = ', '.join(f'{r["top1"]:.2f}' for r in row['runs'])
        speed = row.get('time_per_iter_s')
        config = row['config'] or row['checkpoint']
        lines.append(f'| {row["label"]} | `{config}` | {top1} | {row["n"]} '
                     f'| {seeds} | '
                     f'{"-" if speed is None else f"{speed:.3f}"} |')
    lines += [
        '', 'top-1: validation of the last epoch, mean ± sample standard '
        'deviation over the seeds.'
    ]
    lines += _spots_markdown(summary)
    return '\n'.join(lines) + '\n'


def _spots_markdown(summary: dict) -> List[str]:
    """Where the spot-adaptive runs distilled: the rate of each spot in
    the last epoch, and the figures of ``plot_spots.py``."""
    runs = [
        r for row in summary['rows'] if row.get('method') == 'sakd'
        for r in row['runs'] if r.get('spot_rates')
    ]
    if not runs:
        return []
    lines = [
        '', '## Where SAKD distilled', '',
        'Share of the samples distilled at each spot in the last epoch '
        '(1: every sample; `spot_statistics.json` of each run):', '',
        '| spot | ' + ' | '.join(f'seed {r["seed"]}' for r in runs) + ' |',
        '|---|' + '---|' * len(runs)
    ]
    for spot in runs[0]['spot_rates']:
        rates = [r['spot_rates'].get(spot) for r in runs]
        lines.append(f'| `{spot}` | ' +
                     ' | '.join('-' if v is None else f'{v:.2f}'
                                for v in rates) + ' |')
    for name in summary.get('figures') or []:
        lines += ['', f'![{osp.splitext(name)[0]}]({name})']
    return lines


def write_summary(summary: dict, out: str) -> None:
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(format_markdown(summary))


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        summary = Pipeline(args).run()
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        sys.exit(f'reproduce: {err}')
    if summary:
        if not args.no_print:
            print(format_markdown(summary))
        print(f'written: {args.out}/summary.md, summary.json')
    return summary


if __name__ == '__main__':
    sys.path.insert(0, REPO)  # run as a file: the sibling tools as `tools`
    main()
