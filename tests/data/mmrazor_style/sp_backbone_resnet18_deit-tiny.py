# A CNN teacher and a ViT student (DeiT-tiny arch): similarity-preserving
# distillation from a ResNet stage's map (N, C, H, W) to an encoder layer's
# tokens (N, 1 + h * w, D), and KD on the logits. The routing network maps
# between the two with MapToTokens / TokensToMap adapters.
input_size = 64
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=64,
            patch_size=8),
        head=dict(
            type='VisionTransformerClsHead',
            num_classes=1000,
            in_channels=192,
            loss=dict(type='CrossEntropyLoss'))),
    teacher=dict(
        cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py',
        pretrained=False),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layers.5'),
            logits=dict(type='ModuleOutputs', source='head.layers.head')),
        teacher_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layer3'),
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=100.0),
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=1)),
        loss_forward_mappings=dict(
            loss_sp=dict(
                s_feature=dict(from_student=True, recorder='feat'),
                t_feature=dict(from_student=False, recorder='feat')),
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))
