"""Early, explicit checks of a config before the Runner builds anything."""
import os.path as osp

from mmengine.config import Config

_REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://',
                    'torchvision://', 'modelzoo://', 'mmcls://')


def check_teacher_ckpt(cfg: Config) -> None:
    """Fail early when ``model.teacher_ckpt`` names a missing local file.

    MMRazor only notices a missing teacher checkpoint after both networks are
    built, with ``FileNotFoundError: <path> can not be found``; this check
    names the config key and the fix instead.

    Raises:
        FileNotFoundError: When the path is local and does not exist.
    """
    model = cfg.get('model', None)
    ckpt = model.get('teacher_ckpt', None) if model is not None else None
    if not ckpt or not isinstance(ckpt, str) or ckpt.startswith(
            _REMOTE_PREFIXES):
        return
    if not osp.isfile(osp.expanduser(ckpt)):
        raise FileNotFoundError(
            f'model.teacher_ckpt={ckpt!r} does not exist. Train the teacher '
            'first (python tools/train.py <teacher config>), then point '
            'model.teacher_ckpt at its checkpoint, e.g. '
            '--cfg-options model.teacher_ckpt=work_dirs/<teacher>/'
            'best_accuracy_top1_epoch_N.pth')
