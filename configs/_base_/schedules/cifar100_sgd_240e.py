# The CIFAR KD benchmark recipe (RepDistiller, SAKD): SGD, lr 0.05, momentum
# 0.9, weight decay 5e-4, batch 64, 240 epochs, x0.1 at 150 / 180 / 210.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
    # spot-adaptive models only: their policy and adapters (parameters named
    # sakd_*) train at lr / 2 with weight decay 1e-3, like the second
    # optimizer of the SAKD reference; no effect on other models
    paramwise_cfg=dict(
        custom_keys={'sakd_': dict(lr_mult=0.5, decay_mult=2.0)}))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# the recipe's learning rate is tuned for a total batch size of 64
auto_scale_lr = dict(base_batch_size=64)
