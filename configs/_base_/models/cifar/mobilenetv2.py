# SAKD's 'MobileNetV2': MobileNetV2 at width 1.0 (RepDistiller's mobile_half
# is widen_factor=0.5), CIFAR-100 head; 2,353,060 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARMobileNetV2', widen_factor=1.0),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=1280,
        # N(0, 0.01) weight and zero bias, as the reference's
        # _initialize_weights (LinearClsHead's default, made explicit)
        init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0),
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
