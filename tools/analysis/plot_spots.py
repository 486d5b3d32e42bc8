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

Every file is checked before anything is drawn: each rate must be a number
in [0, 1], ``epoch`` and ``iter`` ints >= 0. The figures are drawn in
memory and only then written, each to a temporary file in ``--out`` that
replaces the figure when complete, so an error leaves the folder as it was.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

FILENAME = 'spot_statistics.json'
META_KEYS = ('kind', 'epoch', 'iter')
FIGURES = ('spot_rates.png', 'spot_heatmap.png')
# figure size in inches, dpi, and the pixels of one figure (RGBA in memory:
# 4 bytes per pixel while it is drawn)
SIZE_RANGE = (1.0, 100.0)
DPI_RANGE = (10, 1000)
MAX_MEGAPIXELS = 50


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
            holds rows without ``kind``/``epoch``/``iter`` or spot rates,
            with an ``epoch`` or ``iter`` that is not an int >= 0, or with a
            rate that is not a number in [0, 1].
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
        check_row(row, f'{path}: row {i}')
    return sorted(rows, key=lambda r: (r['iter'], r['kind'] == 'epoch'))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_row(row: dict, where: str) -> None:
    """Check the ``epoch``/``iter`` and the spot rates of one row.

    Args:
        row (dict): A row with ``kind``, ``epoch``, ``iter`` and spot rates.
        where (str): The file and row, for the message.

    Raises:
        SpotStatisticsError: If ``epoch`` or ``iter`` is not an int >= 0,
            or a rate is not a real number in [0, 1] (strings, bools, NaN
            and infinities included).
    """
    for key in ('epoch', 'iter'):
        value = row[key]
        if not (isinstance(value, int) and not isinstance(value, bool)
                and value >= 0):
            raise SpotStatisticsError(
                f'{where} has {key} {value!r}, expected an int >= 0')
    for spot in spots_of([row]):
        rate = row[spot]
        # NaN fails both comparisons; ints of any size compare exactly
        if not (_is_number(rate) and 0 <= rate <= 1):
            raise SpotStatisticsError(
                f"{where} ({row['kind']}, epoch {row['epoch']}, iter "
                f"{row['iter']}): spot {spot!r} has rate {rate!r}, expected "
                'a number in [0, 1] (the share of samples distilled there)')


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
        help=f'figure size in inches, each in [{SIZE_RANGE[0]:g}, '
        f'{SIZE_RANGE[1]:g}]')
    parser.add_argument(
        '--dpi',
        type=int,
        default=100,
        help=f'in [{DPI_RANGE[0]}, {DPI_RANGE[1]}]; at most '
        f'{MAX_MEGAPIXELS} megapixels a figure')
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.work_dirs):
        parser.error(f'--names gives {len(args.names)} names for '
                     f'{len(args.work_dirs)} work dirs; give one per work '
                     'dir or leave it out')
    low, high = SIZE_RANGE
    if not all(low <= side <= high for side in args.size):  # NaN fails too
        parser.error(f'--size {" ".join(f"{s:g}" for s in args.size)}: '
                     f'width and height must be in [{low:g}, {high:g}] '
                     'inches')
    low, high = DPI_RANGE
    if not low <= args.dpi <= high:
        parser.error(f'--dpi {args.dpi}: expected an int in [{low}, {high}]')
    width, height = (round(side * args.dpi) for side in args.size)
    if width * height > MAX_MEGAPIXELS * 1e6:
        parser.error(
            f'--size {" ".join(f"{s:g}" for s in args.size)} at --dpi '
            f'{args.dpi} is {width} x {height} pixels '
            f'({width * height / 1e6:.1f} megapixels), more than the limit '
            f'of {MAX_MEGAPIXELS} megapixels per figure; lower --size or '
            '--dpi')
    return args


def render(fig) -> bytes:
    """A figure as PNG bytes, at its own size and dpi.

    No tight bounding box, so the image is exactly ``WIDTH * DPI`` x
    ``HEIGHT * DPI`` pixels.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png')
    return buffer.getvalue()


def write_files(out: str, files: Dict[str, bytes]) -> List[str]:
    """Write the files into ``out`` (created if missing), none partially.

    Each file is written to a temporary file in ``out`` first; only when
    all are complete do they replace their targets (``os.replace``). On an
    error the temporary files and the folders created here are removed and
    the existing files are left as they were.

    Returns:
        list[str]: The paths written.

    Raises:
        OSError: If a folder or file cannot be written.
    """
    created = []
    parent = osp.abspath(out)
    while not osp.exists(parent):
        created.append(parent)
        parent = osp.dirname(parent)
    umask = os.umask(0)
    os.umask(umask)
    temps: Dict[str, str] = {}
    try:
        os.makedirs(out, exist_ok=True)
        for name, data in files.items():
            fd, temp = tempfile.mkstemp(
                prefix=f'.{name}.', suffix='.tmp', dir=out)
            temps[name] = temp
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
            # the permissions of a file opened the usual way, not mkstemp's
            os.chmod(temp, 0o666 & ~umask)
        paths = []
        for name, temp in list(temps.items()):
            path = osp.join(out, name)
            os.replace(temp, path)
            del temps[name]
            paths.append(path)
        return paths
    except BaseException:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.remove(temp)
        for folder in created:  # the deepest first; only if left empty
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise


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
    if osp.exists(out) and not osp.isdir(out):
        print(
            f'plot_spots: --out {out} is a file, expected a folder',
            file=sys.stderr)
        return 1
    # drawn in memory first: nothing is written unless both figures are
    figures = {
        name: render(make(runs, args.title, args.size, args.dpi))
        for name, make in zip(FIGURES, (rates_figure, heatmap_figure))
    }
    try:
        paths = write_files(out, figures)
    except OSError as e:
        print(
            f'plot_spots: cannot write the figures into {out}: {e}',
            file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
