# Contrastive representation distillation (Tian et al., ICLR 2020,
# arXiv 1910.10699) + KD, ResNet50 -> MobileNetV2 (width 1.0) on CIFAR-100:
# the resnet56 -> resnet20 CRD baseline (beta = 0.8, same NCE and
# memory-bank settings) with this pair's networks and the embedding
# inputs resized to their pooled widths (2048 and 1280).
# lr 0.01, as the recipe uses for MobileNetV2 students.
#
# Teacher: train configs/vanilla/resnet50_cifar100.py (or convert a CIFAR
# KD benchmark checkpoint with
# tools/model_converters/repdistiller2mmsakd.py) and put it at
# `teacher_ckpt`, or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./crd_res56_res20.py']

teacher_ckpt = 'checkpoints/resnet50_cifar100.pth'

model = dict(
    architecture=dict(
        cfg_path='mmsakd::vanilla/mobilenetv2_cifar100.py'),
    teacher=dict(
        cfg_path='mmsakd::vanilla/resnet50_cifar100.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        connectors=dict(
            s_embed=dict(dim_in=1280),
            t_embed=dict(dim_in=2048))))

optim_wrapper = dict(optimizer=dict(lr=0.01))
