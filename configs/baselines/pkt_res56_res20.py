# Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018,
# arXiv 1803.10837) + KD, resnet56 -> resnet20: pooled features,
# beta = 30000.
# the neck returns a tuple; data_idx=0 is the pooled (N, C) tensor
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_pkt=dict(type='mmsakd.PKTLoss', loss_weight=30000.0)),
        loss_forward_mappings=dict(
            loss_pkt=dict(
                s_feature=dict(
                    from_student=True, recorder='pool', data_idx=0),
                t_feature=dict(
                    from_student=False, recorder='pool', data_idx=0)))))
