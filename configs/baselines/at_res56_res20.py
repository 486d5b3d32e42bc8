# Attention transfer (Zagoruyko & Komodakis, ICLR 2017, arXiv 1612.03928)
# + KD, resnet56 -> resnet20: attention maps of layer1, layer2 and layer3,
# beta = 1000 each.
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            feat1=dict(type='ModuleOutputs', source='backbone.layer1'),
            feat2=dict(type='ModuleOutputs', source='backbone.layer2'),
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        teacher_recorders=dict(
            feat1=dict(type='ModuleOutputs', source='backbone.layer1'),
            feat2=dict(type='ModuleOutputs', source='backbone.layer2'),
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        distill_losses=dict(
            loss_at1=dict(type='ATLoss', loss_weight=1000.0),
            loss_at2=dict(type='ATLoss', loss_weight=1000.0),
            loss_at3=dict(type='ATLoss', loss_weight=1000.0)),
        loss_forward_mappings=dict(
            loss_at1=dict(
                s_feature=dict(from_student=True, recorder='feat1'),
                t_feature=dict(from_student=False, recorder='feat1')),
            loss_at2=dict(
                s_feature=dict(from_student=True, recorder='feat2'),
                t_feature=dict(from_student=False, recorder='feat2')),
            loss_at3=dict(
                s_feature=dict(from_student=True, recorder='feat3'),
                t_feature=dict(from_student=False, recorder='feat3')))))
