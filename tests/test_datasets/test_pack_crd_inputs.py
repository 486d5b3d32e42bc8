import numpy as np
import torch

from mmsakd.datasets import PackCRDInputs


def _results(**extra):
    results = dict(
        img=np.random.randint(0, 256, (32, 32, 3), dtype=np.uint8),
        gt_label=3,
        img_shape=(32, 32),
        sample_idx=np.int64(5),
        contrast_idx=np.arange(5, 14, dtype=np.int64))
    results.update(extra)
    return results


def test_packs_image_label_and_crd_fields():
    results = _results()
    packed = PackCRDInputs()(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and tuple(inputs.shape) == (3, 32, 32)
    assert torch.equal(inputs,
                       torch.from_numpy(results['img']).permute(2, 0, 1))
    assert sample.gt_label.tolist() == [3]
    assert sample.sample_idx.dtype == torch.long
    assert sample.sample_idx.shape == () and int(sample.sample_idx) == 5
    contrast = sample.contrast_sample_idxs
    assert contrast.dtype == torch.long and contrast.tolist() == list(
        range(5, 14))
    # sample_idx is data, not meta, so the two cannot clash
    assert 'sample_idx' not in sample.metainfo_keys()
    assert sample.img_shape == (32, 32)


def test_meta_keys_survive_repeated_calls():
    pack = PackCRDInputs(meta_keys=('sample_idx', 'img_shape', 'flip'))
    assert pack.meta_keys == ('img_shape', 'flip')
    for _ in range(3):
        sample = pack(_results(flip=True))['data_samples']
        assert sample.img_shape == (32, 32) and sample.flip is True


def test_accepts_mmrazor_key_and_missing_fields():
    results = _results(contrast_sample_idxs=np.array([1, 2, 3]))
    del results['contrast_idx']
    sample = PackCRDInputs()(results)['data_samples']
    assert sample.contrast_sample_idxs.tolist() == [1, 2, 3]
    results = _results()
    del results['sample_idx'], results['contrast_idx']
    sample = PackCRDInputs()(results)['data_samples']
    assert 'sample_idx' not in sample and 'contrast_sample_idxs' not in sample
    assert sample.gt_label.tolist() == [3]
