import json
import os.path as osp
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
