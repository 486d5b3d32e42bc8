# CRD on neck.gap with the data samples recorded as the model's inputs
# (ModuleInputs on '', data_idx=1), as MMRazor's crd config.
input_size = 96
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=dict(
        cfg_path='mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py',
        pretrained=False),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            neck=dict(type='ModuleOutputs', source='neck.gap'),
            data_samples=dict(type='ModuleInputs', source='')),
        teacher_recorders=dict(
            neck=dict(type='ModuleOutputs', source='neck.gap')),
        distill_losses=dict(
            loss_crd=dict(
                type='CRDLoss', loss_weight=0.8, neg_num=16, sample_n=64)),
        connectors=dict(
            loss_crd_stu=dict(type='CRDConnector', dim_in=1280, dim_out=128),
            loss_crd_tea=dict(type='CRDConnector', dim_in=2048, dim_out=128)),
        loss_forward_mappings=dict(
            loss_crd=dict(
                s_feats=dict(
                    from_student=True,
                    recorder='neck',
                    connector='loss_crd_stu'),
                t_feats=dict(
                    from_student=False,
                    recorder='neck',
                    connector='loss_crd_tea'),
                data_samples=dict(
                    from_student=True, recorder='data_samples', data_idx=1)))))
