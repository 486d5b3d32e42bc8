import os
import os.path as osp

import numpy as np
import pytest

from mmsakd.datasets import CIFAR100


def test_missing_dataset_says_where_to_put_files(tmp_path):
    root = str(tmp_path / 'nothing_here')
    with pytest.raises(RuntimeError) as e:
        CIFAR100(data_root=root, split='train', download=False)
    msg = str(e.value)
    assert osp.join(root, 'cifar-100-python', 'train') in msg
    assert 'dataset.download=True' in msg


def test_checksum_is_verified_by_default(fake_cifar100):
    # a copy in the right layout but not the official bytes is rejected ...
    with pytest.raises(RuntimeError, match='verify_checksum=False'):
        CIFAR100(data_root=fake_cifar100, split='test', download=False)


def test_verify_checksum_false_loads_non_identical_copy(fake_cifar100):
    ds = CIFAR100(
        data_root=fake_cifar100, split='test', download=False,
        verify_checksum=False)
    assert len(ds) == 32
    assert ds.get_data_info(0)['img'].shape == (32, 32, 3)
    assert len(ds.CLASSES) == 100


def test_verify_checksum_false_still_needs_the_files(fake_cifar100):
    os.remove(osp.join(fake_cifar100, 'cifar-100-python', 'meta'))
    with pytest.raises(RuntimeError, match='not found or corrupt'):
        CIFAR100(data_root=fake_cifar100, split='train', download=False,
                 verify_checksum=False)


def test_verify_checksum_must_be_bool(fake_cifar100):
    with pytest.raises(TypeError, match='dataset.verify_checksum'):
        CIFAR100(data_root=fake_cifar100, verify_checksum='no')


def test_real_resplit_copy(shared_cifar100):
    test = CIFAR100(
        data_root=shared_cifar100, split='test', download=False,
        verify_checksum=False, indices=500)
    imgs = np.stack([test.get_data_info(i)['img'] for i in range(len(test))])
    assert imgs.shape == (500, 32, 32, 3)
    # real images: CIFAR-100 statistics, not uniform noise
    assert abs(imgs.mean() / 255 - 0.48) < 0.05
    assert test.CLASSES[0] == 'apple'
