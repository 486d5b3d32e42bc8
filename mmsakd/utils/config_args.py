"""Read a config and the command line's ``--cfg-options`` with errors that
name the file, the key and the value, for mmsakd's tools.

MMEngine reports a syntax error in a ``_base_`` file as ``File "<unknown>"``,
splits ``--cfg-options`` items with a bare tuple unpacking (``ValueError: not
enough values to unpack`` for an item without ``=``), keeps values it cannot
parse as strings (``max_epochs=abc`` fails much later, deep in the loop) and
merges a dict literal as a string. ``DictAction`` parses the values (ints,
floats, bools, None, lists, tuples); :func:`merge_cfg_options` checks them
against the types of the config's own values.
"""
import ast
import os
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config, DictAction

_MISSING = object()


def _syntax_error_below(path: str, seen: set) -> Optional[str]:
    """The first syntax error in ``path`` or its ``_base_`` files."""
    path = osp.abspath(path)
    if path in seen or not path.endswith('.py') or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        line = (err.text or '').rstrip()
        return (f'syntax error in config file {path}, line {err.lineno}: '
                f'{err.msg}' + (f'\n    {line}' if line else ''))
    for base in _base_files(tree):
        try:
            # mmengine's own resolution of relative and ``pkg::`` paths
            base_path, _ = Config._get_cfg_path(base, path)
        except Exception:  # noqa: B902  (reported by mmengine itself)
            continue
        if base_path is not None:
            found = _syntax_error_below(base_path, seen)
            if found:
                return found
    return None


def _base_files(tree: ast.Module) -> list:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets)):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else list(value)
    return []


def load_config(path: str) -> Config:
    """``Config.fromfile`` whose errors name the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SyntaxError: In ``path`` or a ``_base_`` file, naming that file and
            line.
    """
    if '::' not in path and not osp.isfile(path):
        raise FileNotFoundError(
            f'config file {path!r} does not exist (working directory '
            f'{os.getcwd()}); pass the path of a .py file under configs/')
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        found = _syntax_error_below(path, set())
        raise SyntaxError(found or str(err)) from None


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction`` for ``--cfg-options``, refusing what it
    would mis-parse: an item without ``=`` and a dict literal value."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            key, sep, value = item.partition('=')
            if not sep or not key:
                parser.error(
                    f'{option_string} {item!r}: expected KEY=VALUE, e.g. '
                    'train_cfg.max_epochs=10 (no spaces around "=")')
            if value.lstrip().startswith(('{', 'dict(')):
                parser.error(
                    f'{option_string} {key}={value}: dict values are not '
                    'supported; set the keys one by one, e.g. '
                    f'{key}.name=value (one KEY=VALUE per setting)')
        super().__call__(parser, namespace, values, option_string)


def _lookup(cfg: Config, key: str) -> Any:
    node = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for part in key.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(key: str, value, current) -> None:
    if value is None or current is _MISSING:
        return
    if isinstance(current, bool):
        if not (isinstance(value, bool) or value in (0, 1)):
            raise ValueError(
                f'--cfg-options {key}={value!r}: expected True or False '
                f'(the config has {key}={current!r})')
        return
    if isinstance(current, (list, tuple)):
        items = value if isinstance(value, (list, tuple)) else [value]
        numbers = current and all(_is_number(v) for v in current)
        if numbers and not all(_is_number(v) for v in items):
            raise ValueError(
                f'--cfg-options {key}={value!r}: expected a list of numbers, '
                f'e.g. {key}="[150,180,210]"')
        return
    if _is_number(current) and not _is_number(value):
        raise ValueError(f'--cfg-options {key}={value!r}: expected a number '
                         f'(the config has {key}={current!r}); e.g. '
                         f'--cfg-options {key}={current}')


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> Config:
    """Check the types of ``--cfg-options`` values, then merge them.

    A key the config sets to a number, a flag or a list of numbers must get
    one; a key the config leaves unset takes the value as ``DictAction``
    parsed it.

    Raises:
        ValueError: Naming the key, the value and what it should be.
    """
    if not options:
        return cfg
    for key, value in options.items():
        _check_type(key, value, _lookup(cfg, key))
    cfg.merge_from_dict(options)
    return cfg
