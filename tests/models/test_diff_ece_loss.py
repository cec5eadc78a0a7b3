"""DiffECELoss: value, gradient, arguments, and use inside decode heads."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_calsfda.models.losses import DiffECELoss
from mmseg_calsfda.testing.reference import loop_classwise_ece
from tests.test_calibration import random_batch


def test_value_is_mean_classwise_ece():
    logits, label = random_batch(4, n=3)
    loss = DiffECELoss()(logits, label)
    ref = loop_classwise_ece(logits, label, 10, 1e-5).mean()
    assert float(loss) == pytest.approx(float(ref), abs=1e-5)


def test_present_average_and_weight():
    logits, label = random_batch(5)
    loss = DiffECELoss(class_average='present', loss_weight=2.0,
                       n_bins=15)(logits, label)
    ref = loop_classwise_ece(logits, label, 15, 1e-5, 255, 'present').mean()
    assert float(loss) == pytest.approx(2 * float(ref), abs=1e-5)


def test_pixel_weight_zero_drops_pixels():
    logits, label = random_batch(6)
    weight = (torch.rand(label.shape) > 0.5).float()
    masked = label.clone()
    masked[weight == 0] = 255
    a = DiffECELoss()(logits, label, weight=weight)
    b = DiffECELoss()(logits, masked)
    assert float(a) == pytest.approx(float(b), abs=1e-6)


def test_gradient_only_through_confidence_and_finite():
    logits, label = random_batch(7)
    logits.requires_grad_()
    DiffECELoss()(logits, label).backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_zero_weight_skips_but_keeps_graph():
    logits, label = random_batch(7)
    logits.requires_grad_()
    loss = DiffECELoss(loss_weight=0)(logits, label)
    assert float(loss.detach()) == 0
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() == 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(n_bins=0), 'n_bins.*0'),
    (dict(n_bins=2.5), 'n_bins.*2.5'),
    (dict(temperature=0), 'temperature=0'),
    (dict(temperature=-1e-3), 'temperature=-0.001'),
    (dict(class_average='mean'), r"DiffECELoss: class_average must be one "
     r"of \('all', 'present'\), got 'mean'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffECELoss(**kwargs)


def test_bad_inputs():
    loss = DiffECELoss()
    logits, label = random_batch(0)
    with pytest.raises(ValueError, match=r'label \(2, 9, 10\)'):
        loss(logits, label[..., :10])
    label[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r'\[9\]'):
        loss(logits, label)


def test_registered_and_named():
    loss = MODELS.build(dict(type='DiffECELoss', loss_name='loss_cal'))
    assert isinstance(loss, DiffECELoss) and loss.loss_name == 'loss_cal'


def _samples(n, h, w, c):
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, c, (1, h, w)))
        s.set_metainfo(dict(img_shape=(h, w), pad_shape=(h, w)))
        samples.append(s)
    return samples


LOSSES = [dict(type='CrossEntropyLoss', loss_weight=1.0),
          dict(type='DiffECELoss', loss_weight=1.0)]


def test_second_entry_of_dlv2_head_loss_decode():
    head = MODELS.build(dict(type='DLV2Head', in_channels=8, in_index=0,
                             dilations=(1, 2), num_classes=4,
                             loss_decode=LOSSES))
    feats = (torch.randn(2, 8, 8, 8, requires_grad=True), )
    losses = head.loss(feats, _samples(2, 32, 32, 4), train_cfg={})
    assert {'loss_ce', 'loss_ece'} <= set(losses)
    (losses['loss_ce'] + losses['loss_ece']).backward()
    assert torch.isfinite(feats[0].grad).all()


def test_second_entry_of_segformer_head_loss_decode():
    head = MODELS.build(dict(
        type='SegformerHead', in_channels=[4, 8, 16, 32], in_index=[0, 1, 2,
                                                                    3],
        channels=16, num_classes=5, norm_cfg=dict(type='BN'),
        loss_decode=LOSSES))
    feats = tuple(torch.randn(2, c, 16 // 2**i, 16 // 2**i)
                  for i, c in enumerate([4, 8, 16, 32]))
    losses = head.loss(feats, _samples(2, 64, 64, 5), train_cfg={})
    assert losses['loss_ece'].ndim == 0 and 0 <= float(
        losses['loss_ece']) <= 1


def test_autocast_gives_float32_ece_close_to_fp32():
    # a head producing logits under autocast (bf16 on CPU, as AMP does on GPU)
    conv = torch.nn.Conv2d(8, 5, 1)
    feats = torch.randn(2, 8, 9, 11) * 3
    _, label = random_batch(8)
    loss = DiffECELoss()
    fp32 = loss(conv(feats), label)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = conv(feats)
        assert logits.dtype == torch.bfloat16
        amp = loss(logits, label)
    assert amp.dtype == torch.float32
    assert float(amp) == pytest.approx(float(fp32), abs=2e-2)
    # same logits, rounded to bf16 once: identical ECE math in float32
    ref = loss(logits.float(), label)
    assert float(amp) == pytest.approx(float(ref), abs=1e-6)
