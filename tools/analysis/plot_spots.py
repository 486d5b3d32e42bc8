"""Plot where SAKD distilled: per-spot distillation rates over training.

Spot-adaptive knowledge distillation (Song et al., "Spot-adaptive Knowledge
Distillation", IEEE TIP 2022, arXiv 2205.02399) decides per sample and spot
whether to distil; the paper shows the resulting rate of every spot over
training. ``SpotStatisticsHook`` writes those rates to
``<work_dir>/spot_statistics.json`` (rows of ``kind`` ``'window'`` or
``'epoch'``, ``epoch``, ``iter`` and one entry per spot). This tool reads
that file from one or more work dirs and writes two PNG figures:

* ``spot_rates.png``: the rate of each spot over iterations (the window
  rows) and per epoch (the epoch rows), one line per spot; several runs are
  overlaid, each line labelled ``<run>: <spot>``.
* ``spot_heatmap.png``: per run, a spot x epoch heat map of the epoch rates.

    python tools/analysis/plot_spots.py WORK_DIR [WORK_DIR ...]
        [--names NAME ...] [--out DIR] [--title TITLE]
        [--size WIDTH HEIGHT] [--dpi DPI]

A work dir may also be given as the path of the JSON file itself. Both
figures are ``WIDTH * DPI`` x ``HEIGHT * DPI`` pixels (8 x 4.5 inches at
100 dpi by default) and go to ``--out`` (default: the first work dir).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

FILENAME = 'spot_statistics.json'
META_KEYS = ('kind', 'epoch', 'iter')
FIGURES = ('spot_rates.png', 'spot_heatmap.png')


class SpotStatisticsError(ValueError):
    """A statistics file that is missing, empty or not the hook's."""


def stats_path(work_dir: str) -> str:
    """The statistics file of a work dir (or the file itself)."""
    if osp.isdir(work_dir):
        return osp.join(work_dir, FILENAME)
    return work_dir


def load_rows(work_dir: str) -> List[dict]:
    """Read and check the rows ``SpotStatisticsHook`` wrote.

    Args:
        work_dir (str): A run's work dir, or its ``spot_statistics.json``.

    Returns:
        list[dict]: The rows, sorted by iteration (windows before the epoch
        row of the same iteration).

    Raises:
        SpotStatisticsError: If the file is missing, empty, not JSON or
            holds rows without ``kind``/``epoch``/``iter`` or spot rates.
    """
    path = stats_path(work_dir)
    if not osp.isfile(path):
        raise SpotStatisticsError(
            f'{path} does not exist: give the work dir of a run of a '
            'spot-adaptive model (SpotStatisticsHook, in custom_hooks of '
            'configs/_base_/default_runtime.py, writes it there)')
    with open(path) as f:
        text = f.read()
    if not text.strip():
        raise SpotStatisticsError(
            f'{path} is empty: the run wrote no statistics yet; let it '
            'train past the first window (SpotStatisticsHook interval) or '
            'epoch')
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpotStatisticsError(f'{path} is not valid JSON ({e}); was it '
                                  'written by SpotStatisticsHook?') from None
    if not isinstance(rows, list):
        raise SpotStatisticsError(
            f'{path} holds a {type(rows).__name__}, expected the list of '
            'rows SpotStatisticsHook writes')
    if not rows:
        raise SpotStatisticsError(
            f'{path} has no rows: the run reported no distillation rate '
            '(it stopped before the first window or epoch ended, or the '
            'model is not spot-adaptive)')
    for i, row in enumerate(rows):
        if not (isinstance(row, dict) and all(k in row for k in META_KEYS)
                and row['kind'] in ('window', 'epoch') and spots_of([row])):
            raise SpotStatisticsError(
                f'{path}: row {i} is {row!r}, expected kind '
                "'window' or 'epoch', epoch, iter and one rate per spot")
    return sorted(rows, key=lambda r: (r['iter'], r['kind'] == 'epoch'))


def spots_of(rows: Sequence[dict]) -> List[str]:
    """The spot names, in the order the rows give them."""
    names: List[str] = []
    for row in rows:
        names += [k for k in row if k not in META_KEYS and k not in names]
    return names


def series(rows: Sequence[dict], kind: str,
           spot: str) -> Tuple[List[int], List[float]]:
    """The x (iteration or epoch) and rate values of one spot."""
    x_key = 'iter' if kind == 'window' else 'epoch'
    picked = [r for r in rows if r['kind'] == kind and spot in r]
    return [r[x_key] for r in picked], [r[spot] for r in picked]


def _new_figure(size: Sequence[float], dpi: int):
    # the object-oriented API renders with Agg and needs no display
    from matplotlib.figure import Figure
    return Figure(figsize=tuple(size), dpi=dpi, layout='constrained')


def rates_figure(runs: Dict[str, List[dict]], title: str,
                 size: Sequence[float], dpi: int):
    """Rates over iterations (left) and per epoch (right), all runs."""
    fig = _new_figure(size, dpi)
    axes = fig.subplots(1, 2, sharey=True)
    styles = ('-', '--', ':', '-.')
    spots: List[str] = []
    for rows in runs.values():
        spots += [s for s in spots_of(rows) if s not in spots]
    colours = {s: f'C{i % 10}' for i, s in enumerate(spots)}
    for r, (name, rows) in enumerate(runs.items()):
        for spot in spots_of(rows):
            label = spot if len(runs) == 1 else f'{name}: {spot}'
            style = dict(
                color=colours[spot], linestyle=styles[r % len(styles)])
            axes[0].plot(*series(rows, 'window', spot), label=label, **style)
            axes[1].plot(
                *series(rows, 'epoch', spot), marker='o', label=label, **style)
    axes[0].set(
        xlabel='iteration', ylabel='distillation rate', title='windows')
    axes[1].set(xlabel='epoch', title='epochs')
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    for ax in axes:
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize='small', loc='center right')
    fig.suptitle(title)
    return fig


def heatmap_figure(runs: Dict[str, List[dict]], title: str,
                   size: Sequence[float], dpi: int):
    """Per run, a spot x epoch heat map of the epoch rates."""
    fig = _new_figure(size, dpi)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    image = None
    for ax, (name, rows) in zip(axes, runs.items()):
        epochs = [r for r in rows if r['kind'] == 'epoch']
        spots = spots_of(rows)
        ax.set(title=name, xlabel='epoch')
        if not epochs:
            ax.text(
                0.5,
                0.5,
                'no finished epoch',
                ha='center',
                va='center',
                transform=ax.transAxes)
            ax.set(xticks=[], yticks=[])
            continue
        grid = [[r.get(s, float('nan')) for r in epochs] for s in spots]
        image = ax.imshow(grid, aspect='auto', vmin=0, vmax=1, cmap='viridis')
        ax.set_yticks(range(len(spots)), spots)
        step = max(1, len(epochs) // 10)
        ticks = list(range(0, len(epochs), step))
        ax.set_xticks(ticks, [str(epochs[i]['epoch']) for i in ticks])
        if len(epochs) * len(spots) <= 60:
            for i, row in enumerate(grid):
                for j, v in enumerate(row):
                    ax.text(
                        j,
                        i,
                        f'{v:.2f}',
                        ha='center',
                        va='center',
                        fontsize='x-small',
                        color='white' if v < 0.6 else 'black')
    if image is not None:
        fig.colorbar(image, ax=list(axes), label='distillation rate')
    fig.suptitle(title)
    return fig


def run_name(work_dir: str) -> str:
    """A run's default name: its work dir's base name."""
    path = osp.abspath(work_dir)
    if not osp.isdir(path):
        path = osp.dirname(path)
    return osp.basename(path)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'work_dirs',
        nargs='+',
        help=f'work dirs holding {FILENAME} (or the files)')
    parser.add_argument(
        '--names',
        nargs='+',
        default=None,
        help='one name per work dir (default: the work dirs\' base names)')
    parser.add_argument(
        '--out',
        default=None,
        help='folder for the figures (default: the first work dir)')
    parser.add_argument('--title', default='SAKD distillation rate per spot')
    parser.add_argument(
        '--size',
        nargs=2,
        type=float,
        default=(8.0, 4.5),
        metavar=('WIDTH', 'HEIGHT'),
        help='figure size in inches')
    parser.add_argument('--dpi', type=int, default=100)
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.work_dirs):
        parser.error(f'--names gives {len(args.names)} names for '
                     f'{len(args.work_dirs)} work dirs; give one per work '
                     'dir or leave it out')
    if args.dpi < 10 or min(args.size) <= 0:
        parser.error(f'--dpi must be >= 10 and --size positive, got dpi '
                     f'{args.dpi} and size {list(args.size)}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    names = args.names or [run_name(w) for w in args.work_dirs]
    if len(set(names)) != len(names):
        names = [f'{i}:{n}' for i, n in enumerate(names)]
    try:
        runs = {n: load_rows(w) for n, w in zip(names, args.work_dirs)}
    except SpotStatisticsError as e:
        print(f'plot_spots: {e}', file=sys.stderr)
        return 1
    out = args.out or osp.dirname(osp.abspath(stats_path(args.work_dirs[0])))
    os.makedirs(out, exist_ok=True)
    for name, make in zip(FIGURES, (rates_figure, heatmap_figure)):
        path = osp.join(out, name)
        # the figure's own size and dpi: no tight bounding box, so the
        # image is exactly WIDTH * DPI x HEIGHT * DPI pixels
        make(runs, args.title, args.size, args.dpi).savefig(path, format='png')
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
