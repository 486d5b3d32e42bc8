import os

from mmsakd.utils import same_file


def test_same_file_sees_through_spellings_and_links(tmp_path):
    src = tmp_path / 'a.pth'
    src.write_bytes(b'x')
    os.symlink(src, tmp_path / 'link.pth')
    assert same_file(str(src), f'{tmp_path}/./a.pth')
    assert same_file(str(src), str(tmp_path / 'link.pth'))
    assert not same_file(str(src), str(tmp_path / 'b.pth'))
    # neither exists yet: the spellings decide
    assert same_file(str(tmp_path / 'c.pth'), f'{tmp_path}/x/../c.pth')
