# CIFAR-100 as in the CIFAR KD benchmark (RepDistiller / SAKD): random crop
# with 4-pixel zero padding, horizontal flip, per-channel normalisation.
dataset_type = 'mmsakd.CIFAR100'
data_root = 'data/cifar100'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=100,
    # (0.5071, 0.4867, 0.4408) / (0.2675, 0.2565, 0.2761) on the 0..255 scale
    mean=[129.3105, 124.1085, 112.404],
    std=[68.2125, 65.4075, 70.4055],
    to_rgb=False)

train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [dict(type='mmpretrain.PackInputs')]

# non-persistent workers: MMEngine re-seeds them each epoch, so a resumed run
# sees the same augmentations as an uninterrupted one
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
