import numpy as np
import pytest
from mmengine.dataset import BaseDataset

from mmsakd.datasets import CRDSampleDataset, PackCRDInputs


def _cifar(root, **kwargs):
    cfg = dict(
        type='mmsakd.CIFAR100',
        data_root=root,
        split='train',
        download=False,
        verify_checksum=False)
    cfg.update(kwargs)
    return cfg


def _wrap(root, neg_num=8, dataset_kwargs=None, **kwargs):
    return CRDSampleDataset(
        dataset=_cifar(root, **(dataset_kwargs or {})),
        neg_num=neg_num,
        **kwargs)


class _NoLabels(BaseDataset):
    """MMEngine dataset (no ``get_gt_labels``) whose samples lack labels."""

    def __init__(self, labels=None, **kwargs):
        self._labels = labels
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self):
        items = [dict(img=np.zeros((4, 4, 3), np.uint8)) for _ in range(6)]
        if self._labels is not None:
            for item, label in zip(items, self._labels):
                item['gt_label'] = label
        return items


def test_exact_mode_positive_is_itself_and_negatives_other_classes(
        fake_cifar100):
    ds = _wrap(fake_cifar100, neg_num=8)
    labels = ds.dataset.get_gt_labels()
    assert len(ds) == 64 and ds.sample_mode == 'exact'
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        contrast = info['contrast_idx']
        assert info['sample_idx'] == idx
        assert contrast.dtype == np.int64 and contrast.shape == (9, )
        assert contrast[0] == idx
        neg = contrast[1:]
        assert np.all(labels[neg] != labels[idx])
        assert len(np.unique(neg)) == 8
        assert neg.min() >= 0 and neg.max() < len(ds)


@pytest.mark.parametrize('mode', ['relax', 'random'])
def test_relax_mode_positive_shares_the_class(fake_cifar100, mode):
    np.random.seed(0)
    ds = _wrap(fake_cifar100, neg_num=8, sample_mode=mode)
    assert ds.sample_mode == 'relax'
    labels = ds.dataset.get_gt_labels()
    counts = np.bincount(labels)
    for idx in range(len(ds)):
        contrast = ds.get_data_info(idx)['contrast_idx']
        assert labels[contrast[0]] == labels[idx]
        assert np.all(labels[contrast[1:]] != labels[idx])
    # the positive is drawn from the whole class, not always the sample
    idx = int(np.flatnonzero(counts[labels] >= 2)[0])
    positives = {
        int(ds.get_data_info(idx)['contrast_idx'][0])
        for _ in range(50)
    }
    assert positives == set(np.flatnonzero(labels == labels[idx]).tolist())


def test_neg_num_may_use_every_negative_of_the_largest_class(fake_cifar100):
    labels = _wrap(fake_cifar100).dataset.get_gt_labels()
    biggest = np.bincount(labels).argmax()
    neg_num = 64 - np.bincount(labels).max()
    ds = _wrap(fake_cifar100, neg_num=int(neg_num))
    idx = int(np.flatnonzero(labels == biggest)[0])
    neg = ds.get_data_info(idx)['contrast_idx'][1:]
    assert sorted(neg.tolist()) == np.flatnonzero(labels != biggest).tolist()
    with pytest.raises(ValueError, match=f'neg_num={neg_num + 1} is larger'):
        _wrap(fake_cifar100, neg_num=int(neg_num) + 1)


def test_same_numpy_seed_same_indices(fake_cifar100):
    ds = _wrap(fake_cifar100, neg_num=8, sample_mode='relax')

    def draw(seed, dataset):
        np.random.seed(seed)
        return np.stack(
            [dataset.get_data_info(i)['contrast_idx'] for i in range(20)])

    first = draw(3, ds)
    assert np.array_equal(first, draw(3, ds))
    assert np.array_equal(
        first, draw(3, _wrap(fake_cifar100, neg_num=8, sample_mode='relax')))
    assert not np.array_equal(first, draw(4, ds))


def test_percent_keeps_a_fixed_fraction_of_each_class(fake_cifar100):
    np.random.seed(0)
    ds = _wrap(fake_cifar100, neg_num=8, percent=0.5)
    labels = ds.dataset.get_gt_labels()
    for c, pool in enumerate(ds._neg_pools):
        cls = labels[ds._order[ds._starts[c]]]
        assert len(pool) == int((64 - ds._counts[c]) * 0.5)
        assert np.all(labels[pool] != cls)
    for idx in range(len(ds)):
        neg = ds.get_data_info(idx)['contrast_idx'][1:]
        assert set(neg) <= set(ds._neg_pools[ds._class_of[idx]])
    np.random.seed(0)
    again = _wrap(fake_cifar100, neg_num=8, percent=0.5)
    assert all(
        np.array_equal(a, b) for a, b in zip(ds._neg_pools, again._neg_pools))
    with pytest.raises(ValueError, match='percent=0.1'):
        _wrap(fake_cifar100, neg_num=8, percent=0.1)


def test_no_sampling_in_test_mode_or_without_is_sample(fake_cifar100):
    for ds in (_wrap(fake_cifar100, is_sample=False),
               _wrap(fake_cifar100, dataset_kwargs=dict(test_mode=True))):
        info = ds.get_data_info(2)
        assert info['sample_idx'] == 2 and 'contrast_idx' not in info
    # labels are only needed to sample
    ds = CRDSampleDataset(dataset=_NoLabels(), is_sample=False)
    assert ds.get_data_info(1)['sample_idx'] == 1


def test_negative_index_counts_from_the_end(fake_cifar100):
    ds = _wrap(fake_cifar100)
    info = ds.get_data_info(-1)
    assert info['sample_idx'] == 63 and info['contrast_idx'][0] == 63
    with pytest.raises(IndexError):
        ds.get_data_info(64)


def test_pipeline_of_the_wrapped_dataset_packs_the_indices(fake_cifar100):
    ds = _wrap(fake_cifar100, dataset_kwargs=dict(pipeline=[PackCRDInputs()]))
    item = ds[5]
    sample = item['data_samples']
    assert tuple(item['inputs'].shape) == (3, 32, 32)
    assert int(sample.sample_idx) == 5
    assert int(sample.contrast_sample_idxs[0]) == 5
    assert len(sample.contrast_sample_idxs) == 9


def test_lazy_init_defers_loading(fake_cifar100):
    ds = _wrap(fake_cifar100, lazy_init=True)
    assert not ds._fully_initialized
    ds.full_init()
    assert len(ds) == 64 and ds.gt_labels is not None


@pytest.mark.parametrize('kwargs, match', [
    (dict(sample_mode='hard'), "dataset.sample_mode must be 'exact' or "
     "'relax'"),
    (dict(neg_num=0), 'dataset.neg_num must be an int >= 1'),
    (dict(neg_num=-3), 'dataset.neg_num must be an int >= 1'),
    (dict(neg_num=2.5), 'dataset.neg_num must be an int >= 1'),
    (dict(neg_num=True), 'dataset.neg_num must be an int >= 1'),
    (dict(percent=0), r'dataset.percent must be in \(0, 1\]'),
    (dict(percent=1.5), r'dataset.percent must be in \(0, 1\]'),
    (dict(neg_num=16384), 'neg_num=16384 is larger than the'),
])
def test_bad_arguments_name_the_key(fake_cifar100, kwargs, match):
    kwargs.setdefault('neg_num', 8)
    with pytest.raises(ValueError, match=match):
        _wrap(fake_cifar100, **kwargs)


@pytest.mark.parametrize('labels', [None, [[0, 1]] * 6])
def test_dataset_without_single_labels_is_rejected(labels):
    with pytest.raises(ValueError, match="integer 'gt_label'"):
        CRDSampleDataset(dataset=_NoLabels(labels=labels), neg_num=1)


def test_wrapped_dataset_must_be_a_dataset():
    with pytest.raises(TypeError, match='dataset.dataset must be'):
        CRDSampleDataset(dataset=[1, 2, 3], neg_num=1)
