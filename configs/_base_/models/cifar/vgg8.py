# vgg8 (with BN) of the CIFAR KD benchmark (RepDistiller / SAKD),
# CIFAR-100 head; 3,965,028 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARVGG', depth=8),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=512,
        # N(0, 0.01) weight and zero bias, as the reference's
        # _initialize_weights (LinearClsHead's default, made explicit)
        init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0),
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
