"""Register every mmsakd (and MMRazor) module; OpenMMLab's usual entry."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import all mmsakd modules so that they are registered.

    Args:
        init_default_scope (bool): Also make ``mmsakd`` the current default
            scope (as the other OpenMMLab packages do). Defaults to True.
    """
    import mmsakd.datasets  # noqa: F401
    import mmsakd.engine  # noqa: F401
    import mmsakd.models  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmsakd', scope_name='mmsakd')
    elif current.scope_name != 'mmsakd':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmsakd"; register_all_modules creates a new one '
                      'named "mmsakd-<timestamp>" to switch to it.')
        DefaultScope.get_instance(
            f'mmsakd-{datetime.datetime.now()}', scope_name='mmsakd')
