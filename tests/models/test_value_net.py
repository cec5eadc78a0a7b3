"""Stage 2: ECEValueNetHead and CalSFDASegmentor's value head (its input,
stages, estimates and checkpoints)."""
import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint
from mmseg.registry import MODELS

from mmseg_calsfda.calibration import classwise_ece
from tests.utils import NUM_CLASSES, batch, probs_segmentor, tiny_segmentor


@pytest.mark.parametrize('backbone,in_channels,in_index', [
    (dict(type='ResNetV1c', depth=18, base_channels=8, out_indices=(0, 1, 2,
                                                                    3)), 64,
     3),
    (dict(type='MixVisionTransformer', in_channels=3, embed_dims=16,
          num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
          patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
          out_indices=(0, 1, 2, 3), mlp_ratio=4), 128, -1),
])
def test_head_on_resnet_and_mit(backbone, in_channels, in_index):
    feats = MODELS.build(backbone)(torch.randn(3, 3, 64, 64))
    head = MODELS.build(dict(type='ECEValueNetHead',
                             in_channels=in_channels, in_index=in_index))
    out = head(feats)
    assert out.shape == (3, 1)
    assert ((out > 0) & (out < 1)).all()
    # BN -> 1x1 conv (no bias) -> 4x4 -> Linear(128*16 -> 1)
    assert head.conv.bias is None and head.conv.out_channels == 128
    assert head.fc.in_features == 128 * 16 and head.fc.out_features == 1


def test_avg_pool_sees_every_pixel_bilinear_does_not():
    """At 32x32 -> 4x4, the bilinear resize reads only pixels near the
    sample points; adaptive average pooling reads every pixel."""
    feat = torch.zeros(1, 8, 32, 32)
    feat[..., 0, 0] = 5.0  # one pixel far from any bilinear sample point
    for pool, changes in (('bilinear', False), ('avg', True)):
        head = MODELS.build(dict(type='ECEValueNetHead', in_channels=8,
                                 channels=4, pool=pool)).eval()
        assert (head((feat, )) != head((torch.zeros_like(feat), ))).item() \
            is changes, pool
    with pytest.raises(ValueError, match=r"ECEValueNetHead: pool must be "
                       r"one of \('bilinear', 'avg'\), got 'max'"):
        MODELS.build(dict(type='ECEValueNetHead', pool='max'))


def test_without_activation_the_estimate_is_linear_in_the_pooled_input():
    """The reference head (no activation) is affine in its input before the
    sigmoid: on class probabilities it sees where each class is predicted,
    not how confident a pixel is -- two maps with the same per-cell means
    get the same estimate. With ``act_cfg`` a ReLU after the 1x1 conv tells
    them apart, and adds no weights (a checkpoint fits either head)."""
    torch.manual_seed(0)
    # cell-wise the same class means (pool 1x1 over 2x2): a confident
    # half-and-half map against a uniformly unsure one
    sure = torch.tensor([[1., 0.], [0., 1.]]).expand(1, 1, 2, 2)
    sure = torch.cat([sure, 1 - sure], dim=1)
    unsure = torch.full((1, 2, 2, 2), 0.5)
    plain = MODELS.build(dict(type='ECEValueNetHead', in_channels=2,
                              channels=16, pool_size=1)).eval()
    assert torch.allclose(plain((sure, )), plain((unsure, )))
    relu = MODELS.build(dict(type='ECEValueNetHead', in_channels=2,
                             channels=16, pool_size=1,
                             act_cfg=dict(type='ReLU'))).eval()
    relu.load_state_dict(plain.state_dict())
    assert not torch.allclose(relu((sure, )), relu((unsure, )))
    assert set(relu.state_dict()) == set(plain.state_dict())


def test_head_channel_mismatch_names_both_numbers():
    head = MODELS.build(dict(type='ECEValueNetHead', in_channels=2048))
    with pytest.raises(ValueError, match=r'in_channels=2048.*512 channels'):
        head((torch.randn(1, 512, 8, 8), ))


def test_frozen_segmentor_only_head_gets_gradients():
    model = tiny_segmentor()
    model.train()
    data = model.data_preprocessor(batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'value.loss_value', 'value.est_ece',
                           'value.true_ece'}
    losses['value.loss_value'].backward()
    for name, p in model.named_parameters():
        if name.startswith('value_head.'):
            assert p.grad is not None, name
        else:
            assert p.grad is None and not p.requires_grad, name
    # frozen BatchNorm stays in eval mode (statistics untouched)
    assert not model.backbone.training and model.value_head.training


def test_unfrozen_segmentor_trains_backbone_through_features_only():
    model = tiny_segmentor(freeze_segmentor=False)
    model.train()
    data = model.data_preprocessor(batch(), True)
    feats = model.extract_feat(data['inputs'])
    logits = model.decode_head.forward(feats)
    assert logits.requires_grad
    target = model.true_ece(logits, data['data_samples'])
    assert not target.requires_grad  # the reference's defect is fixed
    losses = model.loss(data['inputs'], data['data_samples'])
    losses['value.loss_value'].backward()
    # the MSE reaches the backbone through the features
    assert model.backbone.layer4[0].conv1.weight.grad is not None
    assert model.decode_head.conv_seg[0].weight.grad is None  # not via target


def test_true_ece_is_classwise_ece_of_prediction():
    model = tiny_segmentor()
    data = model.data_preprocessor(batch(), True)
    logits = torch.randn(2, NUM_CLASSES, 8, 8)
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    up = torch.nn.functional.interpolate(logits, size=label.shape[1:],
                                         mode='bilinear')
    torch.testing.assert_close(
        model.true_ece(logits, data['data_samples']),
        classwise_ece(up, label, 10, 1e-5))


def test_predict_puts_estimate_in_metainfo():
    model = tiny_segmentor().eval()
    data = model.data_preprocessor(batch(), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
        est = model.estimate_ece(data['inputs'])
    assert [float(s.est_ece) for s in out] == pytest.approx(est.tolist())
    assert out[0].pred_sem_seg.data.shape == (1, 32, 32)
    assert out[0].seg_logits.data.shape == (NUM_CLASSES, 32, 32)


def test_probs_input_reads_the_class_probabilities():
    model = probs_segmentor().eval()
    assert model.value_head.in_channels == NUM_CLASSES
    data = model.data_preprocessor(batch(), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        probs = model.decode_head.forward(feats).softmax(dim=1)
        expected = model.value_head((probs, )).squeeze(1)
        torch.testing.assert_close(model.estimate_ece(data['inputs']),
                                   expected)
        out = model.predict(data['inputs'], data['data_samples'])
    assert [float(s.est_ece) for s in out] == pytest.approx(
        expected.tolist())
    assert out[0].seg_logits.data.shape == (NUM_CLASSES, 32, 32)


def test_probs_input_value_stage_trains_only_the_head():
    model = probs_segmentor()
    model.train()
    data = model.data_preprocessor(batch(), True)
    model.loss(data['inputs'], data['data_samples'])[
        'value.loss_value'].backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == {n for n, _ in model.value_head.named_parameters(
        prefix='value_head')}


def test_probs_input_bad_config_names_the_key():
    with pytest.raises(ValueError, match='value_head.in_channels.*'
                       r'in_channels=64, in_index=3'):
        tiny_segmentor(value_input='probs')
    with pytest.raises(ValueError, match='value_input must be one of'):
        tiny_segmentor(value_input='logits')


def test_stage_value_needs_a_value_head():
    with pytest.raises(ValueError, match='value_head'):
        tiny_segmentor(value_head=None)
    with pytest.raises(ValueError, match="stage must be one of"):
        tiny_segmentor(stage='adapt')


def test_target_stage_freezes_value_head():
    model = tiny_segmentor(stage='target').train()
    assert not any(p.requires_grad for p in model.value_head.parameters())
    assert not model.value_head.training and model.backbone.training


def test_checkpoint_round_trip_keeps_value_head(tmp_path):
    model = tiny_segmentor()
    torch.nn.init.normal_(model.value_head.fc.weight)
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), path)
    other = tiny_segmentor()
    load_checkpoint(other, path, map_location='cpu', strict=True)
    torch.testing.assert_close(other.value_head.fc.weight,
                               model.value_head.fc.weight)
