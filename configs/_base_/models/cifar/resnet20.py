# resnet20 of the CIFAR KD benchmark (RepDistiller / SAKD), CIFAR-100 head;
# 278,324 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARResNet', depth=20),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=64,
        # the reference's nn.Linear keeps PyTorch's default init, not
        # LinearClsHead's N(0, 0.01)
        init_cfg=None,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
