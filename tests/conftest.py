import logging
import os.path as osp

import pytest
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import mmsakd  # noqa: F401  (compat layer before anything imports mmrazor)
from tests.helpers import SHARED_CIFAR, write_fake_cifar100


@pytest.fixture
def fake_cifar100(tmp_path):
    return write_fake_cifar100(str(tmp_path / 'cifar100'))


@pytest.fixture
def shared_cifar100():
    if not osp.isfile(osp.join(SHARED_CIFAR, 'cifar-100-python', 'test')):
        pytest.skip(f'real CIFAR-100 copy not found at {SHARED_CIFAR} '
                    '(only present on the project machines)')
    return SHARED_CIFAR


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Each test starts with the default scope the previous one found: a
    Runner built in a test makes its config's scope the current one, and
    registry look-ups in later tests would otherwise depend on the order."""
    scopes = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(scopes)


class MMEngineLog(logging.Handler):
    """What mmengine's current logger printed (its messages, one a line):
    MMLogger only calls its own handlers, so caplog sees nothing."""

    def __init__(self, level):
        super().__init__(level)
        self.text = ''

    def emit(self, record):
        self.text += record.getMessage() + '\n'


def _mmengine_log(level):
    logger = MMLogger.get_current_instance()
    records = MMEngineLog(level)
    logger.addHandler(records)
    return logger, records


@pytest.fixture
def mmengine_warnings():
    logger, records = _mmengine_log(logging.WARNING)
    yield records
    logger.removeHandler(records)


@pytest.fixture
def mmengine_log():
    logger, records = _mmengine_log(logging.INFO)
    yield records
    logger.removeHandler(records)
