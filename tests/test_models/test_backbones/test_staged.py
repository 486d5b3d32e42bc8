from collections import OrderedDict

import pytest
import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from mmsakd.models.backbones import StagedBackboneMixin


class Toy(StagedBackboneMixin, BaseBackbone):
    stage_names = ('stem', 'body', 'tail')

    def __init__(self, out_indices=(-1, )):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.tail = nn.Conv2d(4, 8, 1)
        self._init_stages(out_indices)


def x():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_forward_is_the_stages_in_order():
    model = Toy(out_indices=(0, 1, 2)).eval()
    inp = x()
    with torch.no_grad():
        stem, body, tail = model(inp)
        assert torch.equal(stem, model.stem(inp))
        assert torch.equal(body, model.body(stem))
        assert torch.equal(tail, model.tail(body))
    assert model.num_stages == 3
    # unlike BaseBackbone.train, train/eval hand the module back
    assert model.train() is model and model.eval() is model


def test_out_indices_are_normalised_to_stage_order():
    assert Toy().out_indices == (2, )
    assert Toy(out_indices=(-1, 0)).out_indices == (0, 2)
    assert Toy(out_indices=1).out_indices == (1, )
    outs = Toy(out_indices=(2, -3))(x())
    assert [o.shape[1] for o in outs] == [4, 8]


@pytest.mark.parametrize('bad', [(3, ), (-4, ), ('tail', ), (True, ), ()])
def test_bad_out_indices(bad):
    with pytest.raises(ValueError, match='out_indices'):
        Toy(out_indices=bad)


def test_stage_names_must_be_direct_children():

    class Nested(Toy):
        stage_names = ('stem', 'body.0', 'tail')

    with pytest.raises(TypeError, match=r"body\.0"):
        Nested()


def test_forward_stages_by_index_name_and_range():
    model = Toy().eval()
    inp = x()
    with torch.no_grad():
        stem = model.stem(inp)
        body = model.body(stem)
        tail = model.tail(body)
        assert torch.equal(model.forward_stages(inp), tail)
        assert torch.equal(model.forward_stages(inp, 0, 'body'), body)
        assert torch.equal(model.forward_stages(inp, 'stem', 0), stem)
        assert torch.equal(model.forward_stages(stem, 'body', -1), tail)
        assert torch.equal(model.forward_stages(stem, -2, -2), body)
        assert torch.equal(model.forward_stages(body, 2), tail)
    assert model.stage_index('tail') == model.stage_index(-1) == 2


@pytest.mark.parametrize('start, end', [
    ('head', None),
    (0, 'layer9'),
    (3, None),
    (-4, None),
    (0, 3),
    (True, None),
    (1.0, None),
])
def test_bad_stage_lists_the_valid_stages(start, end):
    with pytest.raises(ValueError, match=r"\('stem', 'body', 'tail'\)"):
        Toy().forward_stages(x(), start, end)


def test_start_after_end():
    with pytest.raises(ValueError, match="'tail' comes after end stage 0"):
        Toy().forward_stages(x(), 'tail', 0)
    with pytest.raises(ValueError, match='comes after'):
        Toy().forward_stages(x(), -1, 1)


def test_stage_shapes_dry_run_keeps_modes_and_statistics():
    model = Toy()
    model.train()
    model.body[0].eval()  # a frozen norm must stay frozen
    model.body[0].running_mean.fill_(0.5)
    model.stem.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shapes = model.stage_shapes((3, 16, 16))
    assert isinstance(shapes, OrderedDict)
    assert list(shapes.items()) == [('stem', (4, 16, 16)), ('body', (4, 8, 8)),
                                    ('tail', (8, 8, 8))]
    assert model.training and model.stem.training and model.tail.training
    assert not model.body[0].training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_stage_shapes_in_eval_mode_and_other_dtype():
    model = Toy().double().eval()
    model.body[0].running_var.fill_(4.0)
    assert model.stage_shapes()['tail'] == (8, 16, 16)
    assert not any(m.training for m in model.modules())
    bn_before = model.body[0].num_batches_tracked.item()
    model.train()
    model.stage_shapes()
    # a train-mode forward would have counted a batch
    assert model.body[0].num_batches_tracked.item() == bn_before
