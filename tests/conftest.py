import os.path as osp

import pytest

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
