# Similarity-preserving KD (Tung & Mori, ICCV 2019, arXiv 1907.09682) + KD,
# resnet56 -> resnet20: batch similarity of the layer3 outputs, beta = 3000.
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        teacher_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        distill_losses=dict(
            loss_sp=dict(type='mmsakd.SPLoss', loss_weight=3000.0)),
        loss_forward_mappings=dict(
            loss_sp=dict(
                s_feature=dict(
                    from_student=True, recorder='feat3'),
                t_feature=dict(
                    from_student=False, recorder='feat3')))))
