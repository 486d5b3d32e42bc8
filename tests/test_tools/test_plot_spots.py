import errno
import json
import os
import os.path as osp
import stat
import struct

import numpy as np
import pytest
from matplotlib.image import imread

from mmsakd.engine import SpotStatisticsHook
from tests.test_engine.toy_runner import toy_runner
from tools.analysis import plot_spots as tool


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    """A real Runner run's statistics: 3 epochs of 4 iterations."""
    work_dir = str(tmp_path_factory.mktemp('run'))
    toy_runner(
        work_dir, [SpotStatisticsHook(interval=3)], rates=True,
        max_epochs=3).train()
    return work_dir


def png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', f'{path} is not a PNG'
    return struct.unpack('>II', head[16:24])


@pytest.mark.parametrize('size, dpi, pixels', [
    (None, None, (800, 450)),
    (('4', '3'), '50', (200, 150)),
])
def test_writes_both_figures_at_the_requested_size(run_dir, tmp_path, size,
                                                   dpi, pixels):
    out = str(tmp_path / 'figs')
    argv = [run_dir, '--out', out, '--title', 'toy']
    argv += ['--size', *size, '--dpi', dpi] if size else []
    assert tool.main(argv) == 0
    for name in tool.FIGURES:
        path = osp.join(out, name)
        assert osp.getsize(path) > 1000
        assert png_size(path) == pixels
        image = imread(path)
        assert image.shape[:2] == pixels[::-1]
        assert np.ptp(image[..., :3]) > 0.5  # something was drawn


def test_default_out_is_the_work_dir(run_dir, capsys):
    assert tool.main([run_dir]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [osp.join(run_dir, name) for name in tool.FIGURES]


def test_series_follow_the_rows(run_dir):
    rows = tool.load_rows(run_dir)
    assert tool.spots_of(rows) == ['neck', 'logits']
    # windows of 3 iterations, epochs of 4 (see the hook's tests)
    x, y = tool.series(rows, 'window', 'neck')
    assert x == [3, 6, 9, 12]
    x, y = tool.series(rows, 'epoch', 'neck')
    assert x == [1, 2, 3] and y == pytest.approx([3 / 8] * 3)


def test_runs_are_overlaid_with_their_names(run_dir):
    rows = tool.load_rows(run_dir)
    other = [{**r, 'neck': 1 - r['neck']} for r in rows]
    runs = {'sakd': rows, 'other': other}
    fig = tool.rates_figure(runs, 't', (8, 4.5), 100)
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert labels == [
        'sakd: neck', 'sakd: logits', 'other: neck', 'other: logits'
    ]
    epochs = fig.axes[1].lines[2].get_ydata()
    assert list(epochs) == pytest.approx([5 / 8] * 3)
    heat = tool.heatmap_figure(runs, 't', (8, 4.5), 100)
    titles = [ax.get_title() for ax in heat.axes[:2]]
    assert titles == ['sakd', 'other']
    grid = heat.axes[0].images[0].get_array()
    assert grid.shape == (2, 3)  # spot x epoch


@pytest.mark.parametrize('content, message', [
    (None, 'does not exist'),
    ('', 'is empty'),
    ('[]', 'has no rows'),
    ('{"a": 1}', 'holds a dict'),
    ('[{"kind": "epoch"}]', 'row 0'),
    ('not json', 'not valid JSON'),
])
def test_missing_or_empty_statistics_are_named(tmp_path, capsys, content,
                                               message):
    path = tmp_path / tool.FILENAME
    if content is not None:
        path.write_text(content)
    assert tool.main([str(tmp_path), '--out', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert not (tmp_path / 'o').exists()


def test_names_must_match_the_work_dirs(run_dir, capsys):
    with pytest.raises(SystemExit):
        tool.main([run_dir, '--names', 'a', 'b'])
    assert '--names gives 2 names for 1 work dirs' in capsys.readouterr().err


def test_a_run_without_a_finished_epoch_is_shown_as_such(tmp_path):
    path = tmp_path / tool.FILENAME
    path.write_text(
        json.dumps([dict(kind='window', epoch=0, iter=3, neck=0.5)]))
    runs = {'r': tool.load_rows(str(tmp_path))}
    heat = tool.heatmap_figure(runs, 't', (8, 4.5), 100)
    assert heat.axes[0].texts[0].get_text() == 'no finished epoch'


def _write_stats(folder, text=None):
    """A statistics file of one window and one epoch row, or ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / tool.FILENAME
    path.write_text(
        text or json.dumps([
            dict(kind='window', epoch=0, iter=3, neck=0.5, logits=1.0),
            dict(kind='epoch', epoch=1, iter=4, neck=0.25, logits=1.0)
        ]))
    return path


@pytest.mark.parametrize('rate', [
    '1e308', '-5', '1.5', 'NaN', 'Infinity', '-Infinity', '1' + '0' * 400,
    '"0.5"', 'true', 'null', '[0.5]'
])
def test_a_rate_outside_0_1_is_named_and_nothing_is_written(
        tmp_path, capsys, rate):
    good = _write_stats(tmp_path / 'good')
    bad = _write_stats(
        tmp_path / 'bad', '[{"kind": "window", "epoch": 0, "iter": 3, '
        '"neck": 0.5, "logits": 1.0}, {"kind": "epoch", "epoch": 1, '
        f'"iter": 4, "neck": 0.5, "logits": {rate}}}]')
    out = tmp_path / 'figs' / 'new'
    argv = [str(good.parent), str(bad.parent), '--out', str(out)]
    assert tool.main(argv) == 1
    err = capsys.readouterr().err
    assert f'{bad}: row 1 (epoch, epoch 1, iter 4): spot ' in err
    assert "'logits' has rate " in err and 'a number in [0, 1]' in err
    # neither figure nor any folder: the input is checked first
    assert not (tmp_path / 'figs').exists()


@pytest.mark.parametrize('key, value', [('iter', '"4"'), ('epoch', '-1'),
                                        ('iter', '4.5'), ('epoch', 'true')])
def test_an_epoch_or_iter_that_is_not_a_count_is_named(tmp_path, capsys, key,
                                                       value):
    row = dict(kind='epoch', epoch=1, iter=4, neck=0.5)
    text = json.dumps([row]).replace(f'"{key}": {row[key]}',
                                     f'"{key}": {value}')
    path = _write_stats(tmp_path, text)
    assert tool.main([str(tmp_path), '--out', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert f'{path}: row 0 has {key} ' in err and 'an int >= 0' in err
    assert not (tmp_path / 'o').exists()


TOO_MANY_PIXELS = ('--size 40 40 at --dpi 200 is 8000 x 8000 pixels (64.0 '
                   'megapixels), more than the limit of 50 megapixels')


@pytest.mark.parametrize('options, message', [
    (['--dpi', '100000'], '--dpi 100000: expected an int in [10, 1000]'),
    (['--dpi', '0'], '--dpi 0: expected an int in [10, 1000]'),
    (['--size', '1e6', '4.5'], '--size 1e+06 4.5: width and height must be '
     'in [1, 100] inches'),
    (['--size', '0', '4'], '--size 0 4: width and height'),
    (['--size', '8', '-4'], '--size 8 -4: width and height'),
    (['--size', 'nan', '4'], '--size nan 4: width and height'),
    (['--size', '8', 'inf'], '--size 8 inf: width and height'),
    (['--size', '40', '40', '--dpi', '200'], TOO_MANY_PIXELS),
])
def test_figure_size_and_dpi_are_bounded(tmp_path, capsys, options, message):
    _write_stats(tmp_path)
    out = tmp_path / 'o'
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(tmp_path), '--out', str(out), *options])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def _old_figures(out):
    out.mkdir()
    for name in tool.FIGURES:
        (out / name).write_bytes(b'old')


def test_a_failure_while_drawing_leaves_the_folder_as_it_was(
        tmp_path, monkeypatch):
    _write_stats(tmp_path)
    out = tmp_path / 'figs'
    _old_figures(out)

    def broken(*args):
        raise RuntimeError('drawing failed')

    # the first figure is drawn, the second fails
    monkeypatch.setattr(tool, 'heatmap_figure', broken)
    with pytest.raises(RuntimeError, match='drawing failed'):
        tool.main([str(tmp_path), '--out', str(out)])
    assert sorted(os.listdir(out)) == sorted(tool.FIGURES)
    assert all((out / name).read_bytes() == b'old' for name in tool.FIGURES)
    with pytest.raises(RuntimeError, match='drawing failed'):
        tool.main([str(tmp_path), '--out', str(tmp_path / 'new' / 'figs')])
    assert not (tmp_path / 'new').exists()


def test_a_failure_while_writing_leaves_no_partial_file(
        tmp_path, monkeypatch, capsys):
    _write_stats(tmp_path)
    out = tmp_path / 'figs'
    _old_figures(out)
    fdopen, opened = os.fdopen, []

    class FullDisk:
        """The second file runs out of space half-way."""

        def __init__(self, f):
            self.f = f
            opened.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            if len(opened) == 2:
                raise OSError(errno.ENOSPC, 'No space left on device')
            self.f.write(data[len(data) // 2:])

    monkeypatch.setattr(os, 'fdopen', lambda *a: FullDisk(fdopen(*a)))
    assert tool.main([str(tmp_path), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert f'cannot write the figures into {out}' in err
    assert 'No space left on device' in err
    assert sorted(os.listdir(out)) == sorted(tool.FIGURES)
    assert all((out / name).read_bytes() == b'old' for name in tool.FIGURES)
    opened.clear()
    assert tool.main([str(tmp_path), '--out', str(tmp_path / 'a' / 'b')]) == 1
    assert not (tmp_path / 'a').exists()


def test_figures_replace_the_old_ones_with_the_usual_permissions(tmp_path):
    _write_stats(tmp_path)
    out = tmp_path / 'figs'
    _old_figures(out)
    assert tool.main([str(tmp_path), '--out', str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(tool.FIGURES)
    umask = os.umask(0)
    os.umask(umask)
    for name in tool.FIGURES:
        assert png_size(out / name) == (800, 450)
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o666 & ~umask
