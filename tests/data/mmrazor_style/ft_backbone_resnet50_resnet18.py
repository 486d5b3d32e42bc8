# FactorTransfer, the train stage of MMRazor's factor-transfer_backbone_
# resnet50_resnet18 config (its pretrain stage's base merged in): the
# pre-training loss stays in distill_losses without a forward mapping
# (MMRazor never computes it), and both records lie inside a block
# (conv2 of a BasicBlock, conv3 of a Bottleneck, before BN and the residual
# sum). The paraphraser runs its encoder without gradients (phase='train').
input_size = 32
num_classes = 10
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    architecture=dict(
        cfg_path='mmpretrain::resnet/resnet18_8xb16_cifar10.py',
        pretrained=False),
    teacher=dict(
        cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar10.py',
        pretrained=False),
    calculate_student_loss=True,
    student_trainable=True,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            bb_s4=dict(type='ModuleOutputs',
                       source='backbone.layer4.1.conv2')),
        teacher_recorders=dict(
            bb_s4=dict(type='ModuleOutputs',
                       source='backbone.layer4.2.conv3')),
        distill_losses=dict(
            loss_s4_pretrain=dict(type='L2Loss', loss_weight=1.0),
            loss_s4=dict(type='FTLoss', loss_weight=1.0)),
        connectors=dict(
            loss_s4_sfeat=dict(
                type='Translator', in_channel=512, out_channel=1024),
            loss_s4_tfeat=dict(
                type='Paraphraser',
                phase='train',
                in_channel=2048,
                out_channel=1024)),
        loss_forward_mappings=dict(
            loss_s4=dict(
                s_feature=dict(
                    from_student=True,
                    recorder='bb_s4',
                    connector='loss_s4_sfeat'),
                t_feature=dict(
                    from_student=False,
                    recorder='bb_s4',
                    connector='loss_s4_tfeat')))))
