# Non-adaptive MMRazor distillation from a CNN to a vision transformer on
# CIFAR-100: similarity-preserving (Tung & Mori, ICCV 2019) from the
# teacher's layer2 map (64, 16, 16) to the student's sixth encoder layer
# (65 tokens of 192: 8x8 patches of 4x4 pixels and the class token), plus
# logits KD (T=4). ResNet-18 at half width teaches DeiT-tiny. Swap the model
# type to mmsakd.SpotAdaptiveDistill for the spot-adaptive version
# (sakd_sp-kd_r18w32_deit-t_cifar100.py), which routes between the map and
# the tokens through MapToTokens / TokensToMap adapters.
#
# Teacher: train configs/vanilla/resnet18-w32_cifar100.py first, then put its
# checkpoint at `teacher_ckpt` or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=32,
            patch_size=4),
        head=dict(
            type='VisionTransformerClsHead',
            num_classes=100,
            in_channels=192,
            loss=dict(type='CrossEntropyLoss'))),
    teacher=dict(
        cfg_path='mmsakd::vanilla/resnet18-w32_cifar100.py', pretrained=False),
    teacher_ckpt='checkpoints/resnet18-w32_cifar100.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layers.5'),
            logits=dict(type='ModuleOutputs', source='head.layers.head')),
        teacher_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layer2'),
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=4, loss_weight=1.0),
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=3000.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_sp=dict(
                s_feature=dict(from_student=True, recorder='feat'),
                t_feature=dict(from_student=False, recorder='feat')))))

val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
