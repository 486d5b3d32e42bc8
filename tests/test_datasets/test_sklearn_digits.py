import numpy as np
import pytest

from mmsakd.datasets import SklearnDigits


def test_splits_are_disjoint_stratified_and_cifar_shaped():
    train = SklearnDigits(split='train')
    test = SklearnDigits(split='test')
    assert (len(train), len(test)) == (1437, 360)
    sample = train.get_data_info(0)
    assert sample['img'].shape == (32, 32, 3)
    assert sample['img'].dtype == np.uint8
    # the three channels are the same grey image, full 0..255 range used
    assert np.array_equal(sample['img'][..., 0], sample['img'][..., 2])
    assert max(train.get_data_info(i)['img'].max() for i in range(20)) > 200
    counts = np.bincount(test.get_gt_labels(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # no image is in both splits
    tr = {train.get_data_info(i)['img'].tobytes() for i in range(len(train))}
    dup = sum(
        test.get_data_info(i)['img'].tobytes() in tr for i in range(len(test)))
    assert dup == 0


def test_deterministic_and_resizable():
    a = SklearnDigits(split='test', img_size=16)
    b = SklearnDigits(split='test', img_size=16)
    assert a.get_data_info(5)['img'].shape == (16, 16, 3)
    assert np.array_equal(a.get_data_info(5)['img'], b.get_data_info(5)['img'])
    assert a.get_gt_labels().tolist() == b.get_gt_labels().tolist()


def test_pipeline_packs_inputs():
    ds = SklearnDigits(
        split='train',
        indices=3,
        pipeline=[dict(type='mmpretrain.PackInputs')])
    item = ds[0]
    assert tuple(item['inputs'].shape) == (3, 32, 32)
    assert int(item['data_samples'].gt_label) == ds.get_gt_labels()[0]


@pytest.mark.parametrize('kwargs, key', [
    (dict(split='val'), 'dataset.split'),
    (dict(img_size=4), 'dataset.img_size'),
    (dict(test_ratio=1.5), 'dataset.test_ratio'),
])
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SklearnDigits(**kwargs)


def test_empty_selection_names_the_setting():
    with pytest.raises(
            ValueError,
            match=r"SklearnDigits\(split='test', indices=0\) has "
            'no samples: dataset.indices must select'):
        SklearnDigits(split='test', indices=0)
