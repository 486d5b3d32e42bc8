"""CRDSampleDataset + PackCRDInputs through MMEngine's dataloader, MMPretrain's
data preprocessor and MMRazor's CRDLoss."""
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.models import ClsDataPreprocessor
from mmrazor.models.losses import CRDLoss

# CIFAR-100 statistics on the 0..255 scale
MEAN = [129.3, 124.1, 112.4]
STD = [68.2, 65.4, 70.4]


def _loader_cfg(root, num_workers=0, **dataset_kwargs):
    # the config of the wrapper's docstring, with a small neg_num
    inner = dict(
        type='mmsakd.CIFAR100',
        data_root=root,
        split='train',
        download=False,
        verify_checksum=False,
        pipeline=[
            dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
            dict(
                type='mmpretrain.RandomFlip', prob=0.5,
                direction='horizontal'),
            dict(type='mmsakd.PackCRDInputs'),
        ],
        **dataset_kwargs)
    return dict(
        batch_size=4,
        num_workers=num_workers,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(
            type='mmsakd.CRDSampleDataset',
            dataset=inner,
            neg_num=8,
            sample_mode='exact'))


def _build(cfg, seed=0):
    # mmsakd's configs run under default_scope='mmsakd'
    with DefaultScope.overwrite_default_scope('mmsakd'):
        return Runner.build_dataloader(cfg, seed=seed)


def _check_epoch(loader, n):
    """Run one epoch through the preprocessor into CRDLoss."""
    labels = loader.dataset.gt_labels
    preprocessor = ClsDataPreprocessor(mean=MEAN, std=STD)
    crd = CRDLoss(neg_num=8, sample_n=n, dim_out=128)
    seen = []
    for batch in loader:
        data = preprocessor(batch, training=True)
        inputs, samples = data['inputs'], data['data_samples']
        assert inputs.dtype == torch.float32
        assert tuple(inputs.shape) == (4, 3, 32, 32)
        for sample in samples:
            idx = sample.sample_idx
            assert idx.dtype == torch.long and idx.shape == ()
            contrast = sample.contrast_sample_idxs
            assert contrast.dtype == torch.long
            assert tuple(contrast.shape) == (9, )
            assert contrast[0] == idx
            assert np.all(labels[contrast[1:].numpy()] != labels[int(idx)])
            assert int(sample.gt_label) == labels[int(idx)]
        idxs = torch.stack([s.sample_idx for s in samples])
        s_feats = F.normalize(torch.randn(4, 128), dim=1).requires_grad_()
        t_feats = F.normalize(torch.randn(4, 128), dim=1)
        before = crd.contrast.memory_v1.clone()
        loss = crd(s_feats, t_feats, samples)
        assert torch.isfinite(loss).all()
        loss.sum().backward()
        assert s_feats.grad.abs().sum() > 0
        # the memory bank moves exactly at the batch's own rows
        moved = (crd.contrast.memory_v1 != before).any(1).nonzero()
        assert sorted(moved.flatten().tolist()) == sorted(idxs.tolist())
        seen += idxs.tolist()
    assert sorted(seen) == list(range(n))


def test_fake_cifar_round_trip_into_crd_loss(fake_cifar100):
    np.random.seed(0)
    torch.manual_seed(0)
    loader = _build(_loader_cfg(fake_cifar100))
    assert loader.batch_size == 4
    _check_epoch(loader, 64)


def test_real_images_round_trip_into_crd_loss(shared_cifar100):
    np.random.seed(0)
    torch.manual_seed(0)
    # 48 real training images from many classes
    loader = _build(
        _loader_cfg(shared_cifar100, indices=list(range(0, 48000, 1000))))
    batch = next(iter(loader))
    imgs = torch.stack(batch['inputs']).float()
    assert abs(imgs.mean().item() / 255 - 0.48) < 0.1
    _check_epoch(loader, 48)


def test_workers_repeat_their_draws_with_the_seed(fake_cifar100):

    def epoch():
        loader = _build(_loader_cfg(fake_cifar100, num_workers=2), seed=1)
        drawn = {}
        for batch in loader:
            for sample in batch['data_samples']:
                drawn[int(sample.sample_idx)] = sample.contrast_sample_idxs
        return drawn

    first, second = epoch(), epoch()
    assert sorted(first) == list(range(64))
    assert all(torch.equal(first[i], second[i]) for i in first)
