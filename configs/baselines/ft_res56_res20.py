# Factor transfer (Kim et al., NeurIPS 2018, arXiv 1802.04977) + KD,
# resnet56 -> resnet20, beta = 200: the loss of RepDistiller and SAKD
# (mmsakd.FactorTransferLoss, p1 = 2, p2 = 1: L1 distance of the normalised
# channel means of squares; MMRazor's FTLoss computes another factor). The
# teacher factors (32 x 8 x 8) come from the paraphraser trained by
# ft_res56_res20_pretrain.py, kept fixed (phase='train': its parameters
# require no gradient); the student's translator (64 -> 32 channels, BN,
# rate k = 0.5) is trained with the student. Both connectors are the
# reference's Paraphraser / Translator.
_base_ = ['./kd_res56_res20.py']

paraphraser_ckpt = 'work_dirs/ft_res56_res20_pretrain/epoch_30.pth'

model = dict(
    distiller=dict(
        student_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        teacher_recorders=dict(
            feat3=dict(type='ModuleOutputs', source='backbone.layer3')),
        distill_losses=dict(
            loss_ft=dict(type='mmsakd.FactorTransferLoss', loss_weight=200.0)),
        connectors=dict(
            s_factor=dict(type='Translator', in_channel=64, out_channel=32),
            t_factor=dict(
                type='mmsakd.FactorParaphraser',
                phase='train',
                in_channel=64,
                out_channel=32,
                init_cfg=dict(
                    type='Pretrained',
                    checkpoint=paraphraser_ckpt,
                    prefix='distiller.connectors.t_factor.'))),
        loss_forward_mappings=dict(
            loss_ft=dict(
                s_feature=dict(
                    from_student=True, recorder='feat3',
                    connector='s_factor'),
                t_feature=dict(
                    from_student=False, recorder='feat3',
                    connector='t_factor')))))
