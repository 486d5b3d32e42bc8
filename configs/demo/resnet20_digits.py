# Offline demo of configs/vanilla/resnet20_cifar100.py: the student trained
# alone, with the same model and recipe, on scikit-learn's digits (shipped
# with scikit-learn, upsampled to 32x32), so nothing is downloaded. Only the
# data blocks change. It is the "student alone" row next to
# configs/demo/crd_res56_res20_baseline_digits.py and
# configs/demo/crd_res56_res20_digits.py.
_base_ = ['../vanilla/resnet20_cifar100.py']

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
