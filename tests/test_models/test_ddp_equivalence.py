"""DDP equivalence of SAKD training (gloo, CPU): 2 ranks x batch B make the
same update as 1 process x batch 2B for per-sample losses on BN-free models
(see docs/sakd.md, "Distributed training", for what differs otherwise)."""
import copy
import os.path as osp
import socket

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.structures import DataSample
from torch import nn

from mmsakd.models.backbones.staged import StagedBackboneMixin
from mmsakd.registry import MODELS

B = 4  # per-rank batch
STEPS = 3


@MODELS.register_module(name='DDPTestConvNet', force=True)
class DDPTestConvNet(StagedBackboneMixin, BaseBackbone):
    """Three conv + ReLU stages, no normalisation layer."""

    stage_names = ('stem', 'layer1', 'layer2')

    def __init__(self, width: int = 4, out_indices=(-1, )) -> None:
        super().__init__(init_cfg=None)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.layer1 = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU())
        self._init_stages(out_indices)


def classifier(width):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
        backbone=dict(type='mmsakd.DDPTestConvNet', width=width),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=5,
            in_channels=4 * width,
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


def rec(source):
    return dict(type='ModuleOutputs', source=source)


def pair(recorder, s_key, t_key):
    return {
        s_key: dict(from_student=True, recorder=recorder),
        t_key: dict(from_student=False, recorder=recorder)
    }


# AT at both stages + KD on the logits: means of per-sample terms
DISTILLER = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        f1=rec('backbone.layer1'),
        f2=rec('backbone.layer2'),
        logits=rec('head.fc')),
    teacher_recorders=dict(
        f1=rec('backbone.layer1'),
        f2=rec('backbone.layer2'),
        logits=rec('head.fc')),
    distill_losses=dict(
        loss_at1=dict(type='ATLoss', loss_weight=100.0),
        loss_at2=dict(type='ATLoss', loss_weight=100.0),
        loss_kd=dict(type='KLDivergence', tau=4)),
    loss_forward_mappings=dict(
        loss_at1=pair('f1', 's_feature', 't_feature'),
        loss_at2=pair('f2', 's_feature', 't_feature'),
        loss_kd=pair('logits', 'preds_S', 'preds_T')))


def build_model() -> BaseModel:
    torch.manual_seed(0)  # the same initial weights in every process
    with DefaultScope.overwrite_default_scope('mmsakd'):
        model = MODELS.build(
            dict(
                type='mmsakd.SpotAdaptiveDistill',
                architecture=classifier(4),
                teacher=classifier(6),
                distiller=DISTILLER,
                data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'),
                sakd=dict(
                    # a bias so large that every gate is 1 whatever Gumbel
                    # noise a rank draws, and the straight-through gradient
                    # of the saturated softmax is exactly 0
                    policy=dict(
                        type='mmsakd.SpotPolicyHead',
                        tau=5.0,
                        init='distill_all',
                        init_bias=1000.0),
                    gamma=1.0,
                    input_shape=(3, 8, 8))))
    model.init_weights()
    return model


def optim_wrapper(model):
    return build_optim_wrapper(
        model,
        dict(
            optimizer=dict(
                type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
            paramwise_cfg=dict(
                custom_keys={'sakd_': dict(lr_mult=0.5, decay_mult=2.0)})))


def global_batch(step, rows):
    generator = torch.Generator().manual_seed(10 + step)
    x = torch.randn(2 * B, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 5, (2 * B, ), generator=generator)
    return dict(
        inputs=x[rows],
        data_samples=[
            DataSample().set_gt_label(int(labels[i])) for i in range(2 * B)
        ][rows])


def train(model, rows, steps=STEPS):
    wrapper = optim_wrapper(model)
    rates = []
    for step in range(steps):
        log = model.train_step(global_batch(step, rows), wrapper)
        rates += [v.item() for k, v in log.items() if 'rate' in k]
    return rates


def _worker(rank, world, port, out_dir):
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel

    import mmsakd  # noqa: F401
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=world)
    model = MMDistributedDataParallel(
        module=build_model(), broadcast_buffers=False)
    rates = train(model, slice(rank * B, (rank + 1) * B))
    params = {
        name: p.detach().clone()
        for name, p in model.module.named_parameters()
    }
    torch.save(
        dict(params=params, rates=rates), osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_equal_one_process_with_the_global_batch(tmp_path):
    torch.multiprocessing.spawn(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    ranks = [
        torch.load(osp.join(tmp_path, f'rank{r}.pth'), weights_only=True)
        for r in range(2)
    ]
    model = build_model()
    initial = copy.deepcopy(dict(model.named_parameters()))
    rates = train(model, slice(0, 2 * B))
    # every gate was 1 on every rank and in the single process
    assert set(rates + ranks[0]['rates'] + ranks[1]['rates']) == {1.0}
    worst = 0.0
    for name, param in model.named_parameters():
        for rank in ranks:
            assert torch.equal(rank['params'][name],
                               ranks[0]['params'][name]), name
            assert torch.allclose(
                rank['params'][name], param, rtol=1e-5, atol=1e-6), name
            worst = max(worst,
                        (rank['params'][name] - param).abs().max().item())
    # the student, the adapters and the policy (weight decay) all moved
    for prefix in ('architecture.', 'sakd_routing.', 'sakd_policy.'):
        assert any(not torch.equal(p, initial[n])
                   for n, p in model.named_parameters()
                   if n.startswith(prefix)), prefix
    print('max |params(2 ranks x B) - params(1 process x 2B)|:', worst)
