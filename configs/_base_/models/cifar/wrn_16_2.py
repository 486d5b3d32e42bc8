# wrn_16_2 of the CIFAR KD benchmark (RepDistiller / SAKD), CIFAR-100 head;
# 703,284 parameters.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmsakd.CIFARWideResNet', depth=16, widen_factor=2),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=100,
        in_channels=128,
        # the reference (wrn.py) keeps PyTorch's default nn.Linear weight
        # init (kaiming uniform, a = sqrt(5)) and zeroes the bias
        init_cfg=dict(
            type='Kaiming',
            layer='Linear',
            a=5**0.5,
            mode='fan_in',
            nonlinearity='leaky_relu',
            distribution='uniform',
            bias=0),
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0)))
