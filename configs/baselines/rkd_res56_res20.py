# Relational KD (Park et al., CVPR 2019, arXiv 1904.05068) + KD, resnet56 ->
# resnet20: distance-wise (w_d = 25) and angle-wise (w_a = 50) relations of
# the pooled features, beta = 1. RepDistiller does not L2-normalise the
# features first, hence with_l2_norm=False.
# the neck returns a tuple; data_idx=0 is the pooled (N, C) tensor
_base_ = ['./kd_res56_res20.py']

model = dict(
    distiller=dict(
        student_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(
            pool=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_rkd_d=dict(
                type='DistanceWiseRKD', loss_weight=25.0, with_l2_norm=False),
            loss_rkd_a=dict(
                type='AngleWiseRKD', loss_weight=50.0, with_l2_norm=False)),
        loss_forward_mappings=dict(
            loss_rkd_d=dict(
                preds_S=dict(from_student=True, recorder='pool', data_idx=0),
                preds_T=dict(from_student=False, recorder='pool',
                             data_idx=0)),
            loss_rkd_a=dict(
                preds_S=dict(from_student=True, recorder='pool', data_idx=0),
                preds_T=dict(from_student=False, recorder='pool',
                             data_idx=0)))))
