"""Files the tools read and write: a run's logged scalars, and whether two
paths name one file."""
import glob
import json
import os.path as osp
from typing import List


def load_scalars(work_dir: str) -> List[dict]:
    """The rows MMEngine's ``LocalVisBackend`` logged for a run.

    Reads every ``<work_dir>/<timestamp>/vis_data/scalars.json`` (one per
    launch; a resumed run has several), launches in order. A line that is not
    JSON (the last one of a killed process) is skipped. A training row has a
    ``loss``, a validation row its metrics (``accuracy/top1``...).

    ``mmpretrain.utils.load_json_log`` reads one such file, but fails on a cut
    line, which a resumed run keeps from its interrupted launch.

    Raises:
        FileNotFoundError: The work dir holds no ``scalars.json``.
    """
    files = sorted(
        glob.glob(
            osp.join(glob.escape(work_dir), '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(
            f'no <timestamp>/vis_data/scalars.json in {work_dir}: the run '
            'logged nothing (see its output)')
    rows = []
    for path in files:
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows


def same_file(src: str, dst: str) -> bool:
    """Whether ``dst`` names ``src`` (another spelling, a link...)."""
    if osp.exists(src) and osp.exists(dst):
        return osp.samefile(src, dst)
    return osp.realpath(src) == osp.realpath(dst)
