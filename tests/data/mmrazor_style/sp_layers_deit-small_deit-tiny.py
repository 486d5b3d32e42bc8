# Similarity-preserving distillation between two ViTs (DeiT archs, no
# distillation token) on token sequences: a recorder on an encoder layer
# of each (backbone.layers.i, (N, L, D)), one on the backbone's class token
# (data_idx=0 of its output tuple), and KD on the logits.
input_size = 32
vit_head = dict(
    type='VisionTransformerClsHead',
    num_classes=1000,
    loss=dict(type='CrossEntropyLoss'))
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
            img_size=32,
            patch_size=8),
        head=dict(in_channels=192, **vit_head)),
    teacher=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-small',
            img_size=32,
            patch_size=8),
        head=dict(in_channels=384, **vit_head)),
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
            loss_tokens=dict(type='mmsakd.SPLoss', loss_weight=100.0),
            loss_cls=dict(type='mmsakd.SPLoss', loss_weight=100.0),
            loss_kl=dict(type='KLDivergence', tau=4, loss_weight=1)),
        loss_forward_mappings=dict(
            loss_tokens=dict(
                s_feature=dict(from_student=True, recorder='tokens'),
                t_feature=dict(from_student=False, recorder='tokens')),
            loss_cls=dict(
                s_feature=dict(from_student=True, recorder='cls', data_idx=0),
                t_feature=dict(from_student=False, recorder='cls',
                               data_idx=0)),
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))
