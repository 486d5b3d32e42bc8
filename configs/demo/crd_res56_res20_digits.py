# Offline demo of configs/sakd/crd_res56_res20.py (spot-adaptive CRD + KD,
# resnet56 -> resnet20) on scikit-learn's digits. Only the data blocks and
# the teacher checkpoint change, plus the two CRD settings that are sizes of
# the data: the memory bank holds one entry per training image (1,437) and
# each class has about 1,290 negatives, so 1,024 are drawn instead of
# 16,384. The teacher comes from configs/demo/resnet56_digits.py
# (tools/quickstart.sh trains it first).
_base_ = ['../sakd/crd_res56_res20.py']

model = dict(
    teacher_ckpt='work_dirs/demo/teacher_resnet56_digits.pth',
    distiller=dict(
        distill_losses=dict(loss_crd=dict(sample_n=1437, neg_num=1024))))

train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        neg_num=1024,
        dataset=dict(
            _delete_=True,
            type='mmsakd.SklearnDigits',
            split='train',
            pipeline={{_base_.train_dataloader.dataset.dataset.pipeline}})))
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='test',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
