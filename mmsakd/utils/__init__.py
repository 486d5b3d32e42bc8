from .config_args import CfgOptionsAction, load_config, merge_cfg_options
from .config_checks import check_num_classes, check_teacher_ckpt
from .dist import (exit_with_launcher, global_rank_from_env, launcher_problem,
                   teardown_dist)
from .files import load_scalars, same_file
from .run_lock import WorkDirLock, WorkDirLocked
from .setup_env import register_all_modules

__all__ = [
    'CfgOptionsAction', 'WorkDirLock', 'WorkDirLocked', 'check_num_classes',
    'check_teacher_ckpt', 'exit_with_launcher', 'global_rank_from_env',
    'launcher_problem', 'load_config', 'load_scalars', 'merge_cfg_options',
    'register_all_modules', 'same_file', 'teardown_dist'
]
