# ResNet50 of the CIFAR KD benchmark (RepDistiller / SAKD): ImageNet
# bottleneck layout, CIFAR stem, CIFAR-100 head; 23,705,252 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARResNetV2', depth=50),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=2048,
        # the reference's nn.Linear keeps PyTorch's default init, not
        # LinearClsHead's N(0, 0.01)
        init_cfg=None,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
