# MMRazor's DeiT config (deit-base_regnety160_pt-16xb64_in1k.py) at a small
# size: a DistilledVisionTransformer student (class and distillation
# tokens; MMPretrain's DeiTClsHead, as MMRazor's needs mmcls) whose
# distillation head imitates a RegNet teacher's logits. The teacher is
# MMPretrain's RegNetX-400MF instead of TIMM's RegNetY-160 (no timm, no
# download).
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
            type='DistilledVisionTransformer',
            arch='deit-tiny',
            img_size=64,
            patch_size=16),
        head=dict(
            type='DeiTClsHead',
            num_classes=1000,
            in_channels=192,
            loss=dict(type='CrossEntropyLoss', loss_weight=0.5))),
    teacher=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(type='RegNet', arch='regnetx_400mf'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=384,
            loss=dict(type='CrossEntropyLoss', loss_weight=0.5))),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.layers.head_dist')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_distill=dict(type='CrossEntropyLoss', loss_weight=0.5)),
        loss_forward_mappings=dict(
            loss_distill=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
