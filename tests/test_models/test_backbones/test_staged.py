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
