# Spot-adaptive correlation congruence + KD, resnet56 -> resnet20 on CIFAR-100
# (Song et al., "Spot-adaptive Knowledge Distillation", IEEE TIP 2022,
# arXiv 2205.02399): the baseline config with its model block swapped.
# gamma = 1.0 (the SAKD code's CIFAR-100 setting); homogeneous pair, so the
# policy starts by distilling everywhere.
_base_ = ['../baselines/cc_res56_res20.py']

model = dict(
    type='mmsakd.SpotAdaptiveDistill',
    sakd=dict(
        policy=dict(type='mmsakd.SpotPolicyHead', tau=5.0, init='distill_all'),
        gamma=1.0,
        hinge=True),
    # SAKD's CC detaches the teacher embedding (it stays at its random init)
    distiller=dict(
        distill_losses=dict(loss_cc=dict(detach_teacher_embed=True))))
