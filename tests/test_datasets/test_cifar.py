import os
import os.path as osp
import pickle

import numpy as np
import pytest

from mmsakd.datasets import CIFAR100
from tests.helpers import write_fake_cifar100


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
        data_root=fake_cifar100,
        split='test',
        download=False,
        verify_checksum=False)
    assert len(ds) == 32
    assert ds.get_data_info(0)['img'].shape == (32, 32, 3)
    assert len(ds.CLASSES) == 100


def test_verify_checksum_false_still_needs_the_files(fake_cifar100):
    os.remove(osp.join(fake_cifar100, 'cifar-100-python', 'meta'))
    with pytest.raises(RuntimeError, match='not found or corrupt'):
        CIFAR100(
            data_root=fake_cifar100,
            split='train',
            download=False,
            verify_checksum=False)


def test_verify_checksum_must_be_bool(fake_cifar100):
    with pytest.raises(TypeError, match='dataset.verify_checksum'):
        CIFAR100(data_root=fake_cifar100, verify_checksum='no')


def test_real_resplit_copy(shared_cifar100):
    test = CIFAR100(
        data_root=shared_cifar100,
        split='test',
        download=False,
        verify_checksum=False,
        indices=500)
    imgs = np.stack([test.get_data_info(i)['img'] for i in range(len(test))])
    assert imgs.shape == (500, 32, 32, 3)
    # real images: CIFAR-100 statistics, not uniform noise
    assert abs(imgs.mean() / 255 - 0.48) < 0.05
    assert test.CLASSES[0] == 'apple'


class _CreatesFile:
    """Unpickling this calls ``os.system`` to create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


def test_data_file_that_runs_code_is_refused(fake_cifar100, tmp_path):
    marker = tmp_path / 'compromised'
    train = osp.join(fake_cifar100, 'cifar-100-python', 'train')
    with open(train, 'rb') as f:
        entry = pickle.load(f)
    entry['batch_label'] = _CreatesFile(str(marker))
    with open(train, 'wb') as f:
        pickle.dump(entry, f)
    with pytest.raises(pickle.UnpicklingError) as e:
        CIFAR100(
            data_root=fake_cifar100,
            split='train',
            download=False,
            verify_checksum=False)
    assert not marker.exists()
    assert train in str(e.value)
    assert 'system' in str(e.value)


@pytest.mark.parametrize('content', [b'garbage bytes', b''])
def test_corrupt_data_file_names_the_file(fake_cifar100, content):
    test = osp.join(fake_cifar100, 'cifar-100-python', 'test')
    with open(test, 'wb') as f:
        f.write(content)
    with pytest.raises(
            pickle.UnpicklingError, match=f'cannot read {test}: .*corrupt'):
        CIFAR100(
            data_root=fake_cifar100,
            split='test',
            download=False,
            verify_checksum=False)


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_every_pickle_protocol_of_plain_arrays_loads(fake_cifar100, protocol):
    test = osp.join(fake_cifar100, 'cifar-100-python', 'test')
    with open(test, 'rb') as f:
        entry = pickle.load(f)
    entry['fine_labels'] = np.asarray(entry['fine_labels'], np.int64)
    with open(test, 'wb') as f:
        pickle.dump(entry, f, protocol=protocol)
    ds = CIFAR100(
        data_root=fake_cifar100,
        split='test',
        download=False,
        verify_checksum=False)
    assert ds.get_data_info(3)['img'].tobytes() == \
        entry['data'][3].reshape(3, 32, 32).transpose(1, 2, 0).tobytes()
    assert ds.get_data_info(3)['gt_label'] == entry['fine_labels'][3]


def test_label_outside_the_classes_names_file_and_value(fake_cifar100):
    test = osp.join(fake_cifar100, 'cifar-100-python', 'test')
    with open(test, 'rb') as f:
        entry = pickle.load(f)
    entry['fine_labels'][5] = 100
    with open(test, 'wb') as f:
        pickle.dump(entry, f)
    with pytest.raises(
            ValueError,
            match=f'{test}: 1 label.* outside the 100 classes.* '
            'e.g. 100 at sample 5'):
        CIFAR100(
            data_root=fake_cifar100,
            split='test',
            download=False,
            verify_checksum=False)


@pytest.mark.parametrize('n_test, indices', [(0, None), (32, 0)])
def test_empty_split_names_the_setting(tmp_path, n_test, indices):
    root = write_fake_cifar100(str(tmp_path / 'c'), n_test=n_test)
    with pytest.raises(
            ValueError, match=r"CIFAR100\(split='test'.* has no samples"):
        CIFAR100(
            data_root=root,
            split='test',
            download=False,
            verify_checksum=False,
            indices=indices)
