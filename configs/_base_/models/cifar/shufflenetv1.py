# ShuffleNetV1 (g = 3) of the CIFAR KD benchmark (RepDistiller / SAKD),
# CIFAR-100 head; 949,258 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARShuffleNetV1', groups=3),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=960,
        # the reference's nn.Linear keeps PyTorch's default init, not
        # LinearClsHead's N(0, 0.01)
        init_cfg=None,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
