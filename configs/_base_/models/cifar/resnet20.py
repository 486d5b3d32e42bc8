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
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
