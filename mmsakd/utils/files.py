"""Files the tools read and write."""
import os.path as osp


def same_file(src: str, dst: str) -> bool:
    """Whether ``dst`` names ``src`` (another spelling, a link...)."""
    if osp.exists(src) and osp.exists(dst):
        return osp.samefile(src, dst)
    return osp.realpath(src) == osp.realpath(dst)
