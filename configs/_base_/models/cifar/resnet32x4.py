# resnet32x4 of the CIFAR KD benchmark (RepDistiller / SAKD), CIFAR-100 head;
# 7,433,860 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARResNet', depth=32, arch='x4'),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=256,
        # the reference's nn.Linear keeps PyTorch's default init, not
        # LinearClsHead's N(0, 0.01)
        init_cfg=None,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
