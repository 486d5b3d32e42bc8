import os

import pytest

from mmsakd.utils import load_scalars, same_file


def test_same_file_sees_through_spellings_and_links(tmp_path):
    src = tmp_path / 'a.pth'
    src.write_bytes(b'x')
    os.symlink(src, tmp_path / 'link.pth')
    assert same_file(str(src), f'{tmp_path}/./a.pth')
    assert same_file(str(src), str(tmp_path / 'link.pth'))
    assert not same_file(str(src), str(tmp_path / 'b.pth'))
    # neither exists yet: the spellings decide
    assert same_file(str(tmp_path / 'c.pth'), f'{tmp_path}/x/../c.pth')


def test_load_scalars_reads_every_launch_in_order(tmp_path):
    for launch, lines in (('20260101_010000', ['{"loss": 2}', '{"loss": 3']),
                          ('20260101_000000', ['{"loss": 1}'])):
        folder = tmp_path / launch / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text('\n'.join(lines) + '\n')
    # the line cut by a killed process is left out
    assert load_scalars(str(tmp_path)) == [{'loss': 1}, {'loss': 2}]
    with pytest.raises(FileNotFoundError, match='logged nothing'):
        load_scalars(str(tmp_path / '20260101_000000'))
