# Non-adaptive MMRazor distillation between two vision transformers on
# CIFAR-100: similarity-preserving (Tung & Mori, ICCV 2019) on the tokens of
# the sixth encoder layer and on the class token, plus logits KD (T=4).
# DeiT-small teaches DeiT-tiny (the DeiT archs of MMPretrain's
# VisionTransformer, no distillation token), 32x32 images in 4x4 patches:
# 64 patch tokens and the class token. Swap the model type to
# mmsakd.SpotAdaptiveDistill for the spot-adaptive version
# (sakd_sp-kd_deit-s_deit-t_cifar100.py).
#
# Teacher: a DeiT-small trained on CIFAR-100 (no config here); pass its
# checkpoint with --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]


def _vit(arch, dims):
    return dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer', arch=arch, img_size=32, patch_size=4),
        head=dict(
            type='VisionTransformerClsHead',
            num_classes=100,
            in_channels=dims,
            loss=dict(type='CrossEntropyLoss')))


model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=_vit('deit-tiny', 192),
    teacher=_vit('deit-small', 384),
    teacher_ckpt='checkpoints/deit-small_cifar100.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            tokens=dict(type='ModuleOutputs', source='backbone.layers.5'),
            cls=dict(type='ModuleOutputs', source='backbone'),
            logits=dict(type='ModuleOutputs', source='head.layers.head')),
        teacher_recorders=dict(
            tokens=dict(type='ModuleOutputs', source='backbone.layers.5'),
            cls=dict(type='ModuleOutputs', source='backbone'),
            logits=dict(type='ModuleOutputs', source='head.layers.head')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=4, loss_weight=1.0),
            loss_sp_tokens=dict(type='mmsakd.SPLoss', loss_weight=3000.0),
            loss_sp_cls=dict(type='mmsakd.SPLoss', loss_weight=3000.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_sp_tokens=dict(
                s_feature=dict(from_student=True, recorder='tokens'),
                t_feature=dict(from_student=False, recorder='tokens')),
            loss_sp_cls=dict(
                s_feature=dict(from_student=True, recorder='cls', data_idx=0),
                t_feature=dict(from_student=False, recorder='cls',
                               data_idx=0)))))

val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
