"""One SAKD training step of every ``configs/sakd/*_res56_res20.py``
config, reduced to numbers that must not change when the implementation
is reorganised: the resolved spots, every loss value and the gradient norm
of every trainable parameter group.

Run as a module to write the reference file::

    python -m tests.test_models.test_algorithms.res56_res20_step
"""
import glob
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmsakd.registry import MODELS
from tests.helpers import REPO

CONFIGS = sorted(
    osp.basename(p)[:-3]
    for p in glob.glob(f'{REPO}/configs/sakd/*_res56_res20.py'))
REFERENCE = osp.join(REPO, 'tests', 'data', 'sakd_res56_res20_step.json')
BATCH = 8
NEG_NUM = 8


def build(name: str):
    cfg = Config.fromfile(f'{REPO}/configs/sakd/{name}.py')
    cfg.model.teacher_ckpt = None
    losses = cfg.model.distiller.distill_losses
    if 'loss_crd' in losses:
        losses.loss_crd.neg_num = NEG_NUM
        losses.loss_crd.sample_n = 64
    for connector in cfg.model.distiller.get('connectors', {}).values():
        connector.pop('init_cfg', None)  # a pre-trained paraphraser
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    for net in (model.teacher, model.student):
        calibrate_bn(net, batch(seed=3)[0])
    with torch.no_grad():
        # a policy that mixes: about half of the gates open at every spot
        model.sakd_policy.fc.bias.zero_()
    return model


def calibrate_bn(net: torch.nn.Module, x: torch.Tensor) -> None:
    """BN running statistics of one batch, so that eval-mode activations
    of the randomly initialised networks stay in a sane range."""
    bns = [
        m for m in net.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    mode = net.training
    net.train()
    with torch.no_grad():
        net(x, mode='tensor')
    net.train(mode)
    for bn in bns:
        bn.momentum = 0.1


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 3, 32, 32, generator=g)
    labels = torch.randint(0, 100, (BATCH, ), generator=g)
    samples = []
    for i, y in enumerate(labels):
        sample = DataSample().set_gt_label(int(y))
        sample.set_data(
            dict(
                sample_idx=torch.tensor(i),
                contrast_sample_idxs=torch.randint(
                    0, 64, (NEG_NUM + 1, ), generator=g)))
        samples.append(sample)
    return x, samples


def one_step(name: str) -> dict:
    """Spots, losses and gradient norms of one step, as exact hex floats."""
    model = build(name)
    model.train()
    x, samples = batch()
    torch.manual_seed(2)  # the policy's Gumbel noise
    losses = model(x, samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    groups = {}
    for pname, param in model.named_parameters():
        if param.grad is None:
            continue
        group = pname.split('.')[0]
        if group == 'distiller':
            group = '.'.join(pname.split('.')[:3])
        groups[group] = groups.get(group, 0.0) + float(
            param.grad.double().pow(2).sum())
    return dict(
        spots=[list(s) for s in model.distiller.spot_table.names],
        spot_names=list(model.spot_names),
        losses={
            k: float(v).hex()
            for k, v in sorted(losses.items())
        },
        grad_sq_norms={
            k: v.hex()
            for k, v in sorted(groups.items())
        })


def main() -> None:
    reference = {name: one_step(name) for name in CONFIGS}
    with open(REFERENCE, 'w') as f:
        json.dump(reference, f, indent=1, sort_keys=True)
    print(f'wrote {REFERENCE}', file=sys.stderr)


if __name__ == '__main__':
    main()
