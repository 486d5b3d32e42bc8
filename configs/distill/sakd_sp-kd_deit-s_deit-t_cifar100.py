# Spot-adaptive version of ./sp-kd_deit-s_deit-t_cifar100.py (Song et al., "Spot-adaptive Knowledge
# Distillation", IEEE TIP 2022, arXiv 2205.02399): the model type swapped,
# the sakd block left to its defaults (the method's).
_base_ = ['./sp-kd_deit-s_deit-t_cifar100.py']

model = dict(type='mmsakd.SpotAdaptiveDistill')
