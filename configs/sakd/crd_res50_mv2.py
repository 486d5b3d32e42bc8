# Spot-adaptive CRD + KD, ResNet50 -> MobileNetV2 (width 1.0) on CIFAR-100
# (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022, arXiv
# 2205.02399): the baseline config with its model block swapped. gamma = 1.0
# (the SAKD code's CIFAR-100 setting).
# Heterogeneous pair (a bottleneck ResNet teaching an inverted-residual
# network): the teacher's segments are no safe default for the student, so the
# policy keeps PyTorch's Linear init (no +10 "distill" bias) and its decisions
# start near 50/50.
_base_ = ['../baselines/crd_res50_mv2.py']

model = dict(
    type='mmsakd.SpotAdaptiveDistill',
    sakd=dict(
        policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0, init='default'),
        gamma=1.0,
        hinge=True))
