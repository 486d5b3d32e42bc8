# Offline demo of configs/distill/kd-fitnet_r18w32-r18w16_cifar100.py on
# scikit-learn's digits. Only the data blocks and the teacher checkpoint
# change; the teacher comes from configs/demo/resnet18-w32_digits.py
# (tools/quickstart.sh trains it first).
_base_ = ['../distill/kd-fitnet_r18w32-r18w16_cifar100.py']

model = dict(teacher_ckpt='work_dirs/demo/teacher_resnet18-w32_digits.pth')

train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='train',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='mmsakd.SklearnDigits',
        split='test',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
