"""Read pickled dataset files without letting them run code.

Python's ``pickle`` calls whatever a file names: a crafted CIFAR ``train``
file can run a shell command the moment it is loaded. The official CIFAR
files (and the re-splits people make of them) hold only dicts, lists,
strings, bytes, numbers and numpy arrays, so :func:`load_data_pickle` looks
up only the globals those need -- numpy's array and scalar reconstruction,
its dtypes, and ``_codecs.encode`` (how protocol 2 stores ``bytes``) -- and
refuses any other, naming the file.
"""
import codecs
import io
import pickle
from typing import Dict

from mmsakd.compat.checkpoint import numpy_globals_by_name


class UnsafePickleError(pickle.UnpicklingError):
    """A data file asks for a global outside the allow-list."""


class CorruptPickleError(pickle.UnpicklingError):
    """A data file is not a readable pickle (truncated or another format)."""


def _allowed_globals() -> Dict[str, object]:
    allowed = dict(numpy_globals_by_name())
    allowed['_codecs.encode'] = codecs.encode
    # protocol 5 stores arrays through numpy's _frombuffer
    import numpy as np
    core = getattr(np, '_core', None) or np.core  # numpy 2 / numpy 1
    for module in {core.numeric.__name__, 'numpy.core.numeric'}:
        allowed[f'{module}._frombuffer'] = core.numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):

    allowed: Dict[str, object] = {}

    def find_class(self, module: str, name: str):
        obj = self.allowed.get(f'{module}.{name}')
        if obj is None:
            raise UnsafePickleError(f'{module}.{name}')
        return obj


def load_data_pickle(data: bytes, path: str, encoding: str = 'latin1'):
    """Unpickle the bytes of a dataset file with the restricted allow-list.

    Args:
        data (bytes): The file's content.
        path (str): The file's path, for the error messages.
        encoding (str): Passed to ``pickle.Unpickler`` (``'latin1'`` reads
            the python 2 pickles of the official CIFAR release).

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: The file names a global other than numpy's array
            machinery (e.g. ``os.system``); nothing it names is called.
        CorruptPickleError: The file is not a readable pickle.
    """
    if not _RestrictedUnpickler.allowed:
        _RestrictedUnpickler.allowed = _allowed_globals()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(
            f'refused to load {path}: it asks to unpickle {e}, which is '
            'not part of a dataset file (only dicts, lists, strings, bytes, '
            'numbers and numpy arrays are loaded, since unpickling anything '
            'else could run code). Replace the file with one of the '
            'official release, or re-create it from numpy arrays and '
            'lists.') from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, UnicodeDecodeError) as e:
        raise CorruptPickleError(
            f'cannot read {path}: it is not a valid pickle (corrupt or '
            f'truncated: {type(e).__name__}: {e}). Replace it with the '
            'file of the official release.') from None
