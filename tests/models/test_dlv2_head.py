"""DLV2Head: the DeepLabV2 classifier."""
import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS


def build(**kwargs):
    cfg = dict(type='DLV2Head', in_channels=16, in_index=-1, num_classes=7)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_branches_and_dilations():
    head = build()
    convs = list(head.conv_seg)
    assert [c.dilation for c in convs] == [(6, 6), (12, 12), (18, 18),
                                          (24, 24)]
    for conv, d in zip(convs, (6, 12, 18, 24)):
        assert isinstance(conv, nn.Conv2d)
        assert conv.kernel_size == (3, 3) and conv.padding == (d, d)
        assert conv.in_channels == 16 and conv.out_channels == 7
    # no BN, no extra conv, no dropout: only the four classifiers
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in head.modules())
    assert head.dropout is None
    n_params = sum(p.numel() for p in head.parameters())
    assert n_params == 4 * (16 * 7 * 9 + 7)


@pytest.mark.parametrize('size', [(13, 17), (32, 32)])
def test_output_is_sum_of_branches_and_keeps_size(size):
    head = build(dilations=(1, 2, 3))
    feats = (torch.randn(1, 3, *size), torch.randn(2, 16, *size))
    out = head(feats)
    assert out.shape == (2, 7, *size)
    x = feats[-1]
    ref = sum(conv(x) for conv in head.conv_seg)
    torch.testing.assert_close(out, ref)


def test_init_normal_std_001():
    head = build(in_channels=256, num_classes=19,
                 init_cfg=dict(type='Normal', std=0.01,
                               override=dict(name='conv_seg')))
    head.init_weights()
    w = torch.cat([c.weight.flatten() for c in head.conv_seg])
    assert abs(float(w.std()) - 0.01) < 0.001
    assert all(float(c.bias.abs().max()) == 0 for c in head.conv_seg)


def test_rejects_multiple_inputs():
    with pytest.raises(ValueError, match='input_transform'):
        build(in_channels=[8, 8], in_index=[0, 1],
              input_transform='resize_concat')
