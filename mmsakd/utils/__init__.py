from .config_checks import check_teacher_ckpt
from .dist import teardown_dist
from .setup_env import register_all_modules

__all__ = ['check_teacher_ckpt', 'register_all_modules', 'teardown_dist']
