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
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
