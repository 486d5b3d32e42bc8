"""Take the student out of a distillation checkpoint.

A checkpoint written by ``tools/train.py`` for a distillation config
(``mmsakd.SpotAdaptiveDistill``, the SAKD algorithm of Song et al.,
"Spot-adaptive Knowledge Distillation", IEEE TIP 2022, arXiv 2205.02399, or
MMRazor's ``SingleTeacherDistill`` of the baselines) holds the whole
algorithm: the student under ``architecture.``, the teacher under
``teacher.``, the distiller's connectors and loss state (CRD's memory bank,
...) under ``distiller.``, SAKD's policy and routing adapters under
``sakd_policy.`` / ``sakd_routing.``, and the optimizer, schedulers and
message hub of the run.

This tool writes the student alone as a plain MMPretrain ``ImageClassifier``
checkpoint, ``{'meta': ..., 'state_dict': ...}``: the ``architecture.*``
tensors without their prefix, and the run's ``meta`` (config, dataset
classes, epoch, ...) unchanged. It loads strictly into the student's own
config (``configs/vanilla/<student>.py``, the ``model.architecture`` of the
distillation config), and ``tools/test.py`` evaluates it there with the
accuracy the distillation checkpoint's student has.

Its name and arguments are MMRazor's tool for the same job
(``tools/model_converters/convert_kd_ckpt_to_student.py``):

* ``checkpoint``: the distillation checkpoint;
* ``--out-path``: the folder to write ``student_<name>.pth`` into (default:
  the checkpoint's folder), or the output file itself when it ends with
  ``.pth``. MMRazor names it ``<name>_student.pth``; here the name starts
  with ``student_`` so that an export written into a work dir never looks
  like one of the run's own checkpoints (``epoch_<N>.pth``,
  ``iter_<N>.pth``) to a glob such as ``epoch_*.pth`` or to a resume;
* ``--inplace``: MMRazor overwrites the checkpoint with its student; here it
  is refused, as is any output path that names the input file: the teacher,
  policy and training state of the run would be lost.

The file is read by mmengine's ``CheckpointLoader``, which mmsakd makes
load with ``weights_only=True`` through its allow-list
(:mod:`mmsakd.compat.checkpoint`): a file that would run code while being
unpickled is refused, a corrupt one is called corrupt. The student is taken
out by :func:`mmsakd.compat.strict_checkpoint.checkpoint_part`, not by
mmengine's ``_load_checkpoint_with_prefix``: that one reads the file again
for the ``meta``, drops the module versions (``_metadata``) and fails on a
missing prefix with a bare assertion. mmengine's ``save_checkpoint`` writes
the output, atomically for a local file
(:mod:`mmsakd.compat.atomic_checkpoint`: a failed write leaves no partial
file).

Example::

    python tools/model_converters/convert_kd_ckpt_to_student.py \\
        work_dirs/crd_res56_res20/epoch_240.pth
    python tools/test.py configs/vanilla/resnet20_cifar100.py \\
        work_dirs/crd_res56_res20/student_epoch_240.pth
"""
import argparse
import os.path as osp
import sys
from collections import Counter, OrderedDict
from typing import List, Mapping, Optional, Tuple

from mmengine.runner import checkpoint as mmengine_checkpoint
from torch import Tensor

import mmsakd  # noqa: F401  (applies the compatibility layer)
from mmsakd.compat import CheckpointLoadError
from mmsakd.compat.strict_checkpoint import (checkpoint_part,
                                             checkpoint_state_dict)
from mmsakd.utils import same_file

PROG = 'convert_kd_ckpt_to_student'
# where MMRazor's single-teacher algorithms keep the student
STUDENT_PREFIX = 'architecture.'


class StudentExportError(ValueError):
    """The checkpoint has no student to take out, or cannot be written."""


def _prefix_counts(keys: List[str]) -> str:
    counts = Counter(k.split('.', 1)[0] for k in keys)
    return ', '.join(f'{name}.* ({n})' for name, n in counts.items())


def extract_student(state_dict: Mapping[str, Tensor]) -> 'OrderedDict':
    """The student's state dict: the ``architecture.*`` entries, unprefixed.

    Args:
        state_dict (Mapping): The distillation model's state dict. Its
            ``_metadata`` (module versions, read by BN when loading) is
            carried over to the student's modules.

    Returns:
        OrderedDict: The student's tensors, in the checkpoint's order.

    Raises:
        StudentExportError: There is no ``architecture.*`` entry.
    """
    student = checkpoint_part(state_dict, STUDENT_PREFIX)
    if not student:
        keys = list(state_dict)
        if any(k.startswith(('backbone.', 'head.', 'neck.')) for k in keys):
            what = ("it is already a single network's checkpoint (keys "
                    f'{_prefix_counts(keys)}); evaluate it with its own '
                    'config, there is no student to take out')
        else:
            what = f'its keys are {_prefix_counts(keys) or "none"}'
        raise StudentExportError(
            f'found no student weights ({STUDENT_PREFIX}*) in the '
            f'checkpoint: {what}. Pass a checkpoint written by training a '
            'distillation config (mmsakd.SpotAdaptiveDistill or MMRazor '
            'SingleTeacherDistill).')
    return student


def load_distill_checkpoint(path: str) -> Tuple[dict, 'OrderedDict']:
    """Read ``path`` (with ``weights_only=True``).

    Returns:
        tuple: The loaded checkpoint and its state dict (``module.``
        stripped).

    Raises:
        CheckpointLoadError: The file is missing, refused or corrupt.
    """
    if not osp.isfile(path):
        raise CheckpointLoadError(
            path, f'cannot read {path}: no such file; pass the .pth file '
            'tools/train.py wrote for the distillation config')
    checkpoint = mmengine_checkpoint.CheckpointLoader.load_checkpoint(
        path, map_location='cpu', logger='silent')
    return checkpoint, checkpoint_state_dict(checkpoint, path)


def output_path(checkpoint: str, out_path: Optional[str] = None) -> str:
    """Where the student goes: ``<out_path or the checkpoint's folder>/
    student_<name>.pth``, or ``out_path`` itself when it ends with
    ``.pth``."""
    if out_path is not None and out_path.endswith('.pth'):
        return out_path
    stem = osp.splitext(osp.basename(checkpoint))[0]
    folder = osp.dirname(checkpoint) if out_path is None else out_path
    return osp.join(folder, f'student_{stem}.pth')


def convert(checkpoint: str, out: str) -> str:
    """Write the student of ``checkpoint`` to ``out``; a summary line.

    Raises:
        StudentExportError: ``out`` is the input, or there is no student.
        CheckpointLoadError: The input cannot be read.
    """
    if same_file(checkpoint, out):
        raise StudentExportError(
            f'the output {out!r} is the input {checkpoint!r}; write the '
            'student to another file (--out-path DIR or --out-path '
            'FILE.pth): the distillation checkpoint also holds the teacher, '
            'the policy and the training state of the run')
    loaded, state_dict = load_distill_checkpoint(checkpoint)
    student = extract_student(state_dict)
    meta = loaded.get('meta', {}) if isinstance(loaded, Mapping) else {}
    left_out = [k for k in state_dict if not k.startswith(STUDENT_PREFIX)]
    others = sorted(
        str(k) for k in (loaded if isinstance(loaded, Mapping) else {})
        if k not in ('meta', 'state_dict'))
    mmengine_checkpoint.save_checkpoint(
        dict(meta=meta, state_dict=student), out)
    lines = [
        f'wrote the student ({len(student)} tensors of {STUDENT_PREFIX}*) '
        f'of {checkpoint} to {out}'
    ]
    if left_out:
        lines.append(f'left out: {_prefix_counts(left_out)}')
    if others:
        lines.append(f'dropped checkpoint entries: {", ".join(others)}')
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Convert a distillation checkpoint (SpotAdaptiveDistill '
        'or SingleTeacherDistill) into a student-only MMPretrain checkpoint')
    parser.add_argument('checkpoint', help='input checkpoint filename')
    parser.add_argument(
        '--out-path',
        help='folder to save student_<name>.pth in (default: the '
        "checkpoint's folder), or the output file when it ends with .pth")
    parser.add_argument(
        '--inplace',
        action='store_true',
        help='replace the input (MMRazor); refused here: the teacher, '
        'policy and training state would be lost')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.inplace:
        print(
            f'{PROG}: error: --inplace would replace {args.checkpoint!r} by '
            'its student and lose the teacher, the policy and the training '
            'state of the run; leave --inplace out (the student goes to '
            f'{output_path(args.checkpoint)!r}) or choose a file with '
            '--out-path FILE.pth.',
            file=sys.stderr)
        return 1
    out = output_path(args.checkpoint, args.out_path)
    try:
        print(convert(args.checkpoint, out))
    except (CheckpointLoadError, StudentExportError) as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
