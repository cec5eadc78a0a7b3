"""Wrapping any MMSeg network: loss placement, cascades, BatchNorm on pooled
features at batch size 1, and the config checks that refuse what cannot be
wrapped."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmseg.registry import MODELS

from mmseg_calsfda.config_check import check_config
from mmseg_calsfda.engine import warmup_bn_stats
from mmseg_calsfda.engine.bn_warmup import OneValueGuard
from mmseg_calsfda.models.losses import DiffECELoss
from mmseg_calsfda.models.segmentors.head_losses import with_head_losses
from tests.utils import ROOT

DIFF_ECE = dict(type='DiffECELoss')
SCE = dict(type='SymmetricCELoss')
CE = dict(type='CrossEntropyLoss', loss_weight=0.4)


def _types(head):
    losses = head['loss_decode']
    return [loss['type'] for loss in losses]


# ----------------------------------------------------------- loss placement
def test_calibration_loss_goes_on_the_final_head_only():
    decode, aux = with_head_losses(
        dict(type='ASPPHead', loss_decode=dict(type='CrossEntropyLoss')),
        dict(type='FCNHead', loss_decode=CE), calibration_loss=DIFF_ECE)
    assert _types(decode) == ['CrossEntropyLoss', 'DiffECELoss']
    assert aux['loss_decode'] == CE
    _, aux = with_head_losses(dict(type='ASPPHead'), [dict(
        type='FCNHead', loss_decode=CE)], calibration_loss=DIFF_ECE,
        calibrate_auxiliary=True)
    assert _types(aux[0]) == ['CrossEntropyLoss', 'DiffECELoss']


def test_cascade_calibrates_its_last_stage():
    decode, _ = with_head_losses(
        [dict(type='FCNHead', loss_decode=CE), dict(type='OCRHead')],
        calibration_loss=DIFF_ECE)
    assert decode[0]['loss_decode'] == CE
    # a head without loss_decode had MMSeg's default CE
    assert _types(decode[1]) == ['CrossEntropyLoss', 'DiffECELoss']


def test_knet_calibrates_through_its_kernel_generate_head():
    knet = dict(type='IterativeDecodeHead', kernel_generate_head=dict(
        type='FCNHead', loss_decode=dict(type='CrossEntropyLoss')),
        kernel_update_head=[dict(type='KernelUpdateHead')])
    decode, _ = with_head_losses(knet, calibration_loss=DIFF_ECE)
    assert _types(decode['kernel_generate_head']) == [
        'CrossEntropyLoss', 'DiffECELoss']
    assert 'loss_decode' not in decode


def test_target_losses_replace_and_auxiliary_modes():
    stdc_like = dict(type='FCNHead', loss_decode=CE,
                     sampler=dict(type='OHEMPixelSampler'))
    decode, aux = with_head_losses(
        [dict(stdc_like), dict(stdc_like)], [dict(stdc_like)],
        decode_losses=[SCE], auxiliary_losses='off')
    assert aux is None
    assert decode[1]['loss_decode'] == [SCE]
    assert 'sampler' not in decode[1]
    # an earlier cascade stage still runs, without a loss of its own
    assert decode[0]['loss_decode'] == [] and 'sampler' not in decode[0]
    decode, aux = with_head_losses(
        dict(stdc_like), [dict(stdc_like)], decode_losses=[SCE],
        auxiliary_losses=[dict(SCE, loss_weight=0.4)])
    assert aux[0]['loss_decode'] == [dict(SCE, loss_weight=0.4)]
    assert 'sampler' not in aux[0]
    decode, aux = with_head_losses(dict(stdc_like), [dict(stdc_like)])
    assert aux[0] == stdc_like and decode == stdc_like  # 'keep'
    with pytest.raises(ValueError, match="auxiliary_losses must be 'keep'"):
        with_head_losses(dict(stdc_like), auxiliary_losses='drop')


def test_query_heads_are_refused_with_the_alternative():
    with pytest.raises(ValueError, match=r"model.decode_head.type = "
                       r"'Mask2FormerHead'.*per-pixel class logits.*UPerHead"):
        MODELS.build(dict(type='CalSFDASegmentor',
                          backbone=dict(type='ResNetV1c', depth=18),
                          decode_head=dict(type='Mask2FormerHead')))


def test_num_stages_must_match_the_heads():
    head = dict(type='FCNHead', in_channels=8, channels=8, num_classes=3)
    with pytest.raises(ValueError, match='model.num_stages = 3 but '
                       'model.decode_head is 2'):
        MODELS.build(dict(type='CalSFDASegmentor', num_stages=3,
                          backbone=dict(type='ResNetV1c', depth=18),
                          decode_head=[head, head]))


def test_diff_ece_on_points_equals_a_row_of_pixels():
    logits = torch.randn(2, 4, 50)
    label = torch.randint(0, 4, (2, 50))
    loss = DiffECELoss()
    torch.testing.assert_close(loss(logits, label),
                               loss(logits[:, :, None], label[:, None]))


# ------------------------------------------------- pooled BN, batch size 1
def test_guard_normalises_one_value_per_channel_by_running_stats():
    bn = nn.BatchNorm2d(3).train()
    bn.running_mean.fill_(0.5)
    bn.running_var.fill_(4.0)
    x = torch.randn(1, 3, 1, 1)
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        bn(x)
    with OneValueGuard([bn]):
        out = bn(x)
        assert bn.training
        batch = torch.randn(2, 3, 1, 1)
        torch.testing.assert_close(  # two values: batch statistics
            bn(batch), nn.functional.batch_norm(
                batch, None, None, bn.weight, bn.bias, training=True))
    torch.testing.assert_close(out, (x - 0.5) / (4.0 + bn.eps)**0.5)
    with pytest.raises(ValueError):  # the hooks are gone
        bn(x)


class _PooledNet(nn.Module):
    """A backbone whose second BN sees globally pooled features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool_bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return (x * self.pool_bn(x.mean((2, 3), keepdim=True)), )


class _Segmentor(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = _PooledNet()
        self.data_preprocessor = lambda batch, training: batch

    def extract_feat(self, inputs):
        return self.backbone(inputs)

    @staticmethod
    def _image_metas(inputs):
        return None


def test_warmup_at_batch_size_one_is_exact_on_pooled_features():
    torch.manual_seed(0)
    model = _Segmentor()
    images = [torch.randn(1, 3, 8, 8) for _ in range(5)]
    warmup_bn_stats(model, [dict(inputs=x) for x in images], 5,
                    modules=('backbone', ))
    # reference: every image's pooled input to pool_bn, where bn normalised
    # each one-image batch by its own statistics (train mode)
    with torch.no_grad():
        pooled, conv_out = [], []
        for x in images:
            y = model.backbone.conv(x)
            conv_out.append(y)
            mean = y.mean((0, 2, 3), keepdim=True)
            var = y.var((0, 2, 3), unbiased=False, keepdim=True)
            z = (y - mean) / (var + 1e-5).sqrt()
            pooled.append(z.mean((2, 3)))
        pooled = torch.cat(pooled)
        conv = torch.cat([c.transpose(0, 1).flatten(1) for c in conv_out], 1)
    torch.testing.assert_close(model.backbone.pool_bn.running_mean,
                               pooled.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.backbone.pool_bn.running_var,
                               pooled.var(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.backbone.bn.running_mean, conv.mean(1),
                               atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------- config checks
def _user_config(tmp_path, network: str, recipe: str = 'source_gta5',
                 body: str = 'model = _base_.calsfda_model\n') -> Config:
    path = tmp_path / 'stage.py'
    recipe = osp.join(ROOT, 'configs', '_base_', 'calsfda', recipe + '.py')
    path.write_text(f'_base_ = [{network!r}, {recipe!r}]\n{body}')
    return Config.fromfile(str(path))


def _network_of(tmp_path, zoo_config: str) -> str:
    """A file with just the network of a model-zoo config."""
    path = tmp_path / 'zoo.py'
    path.write_text(f'_base_ = [{zoo_config!r}]\n')
    zoo = Config.fromfile(str(path), import_custom_modules=False)
    net = str(tmp_path / 'network.py')
    Config(dict(model=zoo.model)).dump(net)
    return net


def test_forgotten_recipe_model_is_named(tmp_path):
    cfg = _user_config(tmp_path, 'mmseg::_base_/models/pspnet_r50-d8.py',
                       body='')
    with pytest.raises(ValueError, match=r"model.type = 'EncoderDecoder'.*"
                       r'model = _base_.calsfda_model'):
        check_config(cfg)


def test_recipe_segmentor_subclass_is_accepted(tmp_path):
    """A registered subclass of the recipe's segmentor (an extension that
    overrides a documented method) may replace the type; an unrelated
    segmentor may not."""
    from mmseg.registry import MODELS

    from mmseg_calsfda.models.segmentors import CalSFDASegmentor

    @MODELS.register_module(force=True)
    class _TestSubclassSegmentor(CalSFDASegmentor):
        pass

    net = 'mmseg::_base_/models/pspnet_r50-d8.py'
    body = ('model = dict(_base_.calsfda_model, '
            "type='_TestSubclassSegmentor')\n")
    check_config(_user_config(tmp_path, net, body=body))
    body = "model = dict(_base_.calsfda_model, type='EncoderDecoder')\n"
    with pytest.raises(ValueError, match=r"model.type = 'EncoderDecoder'"):
        check_config(_user_config(tmp_path, net, body=body))


def test_mask2former_is_refused_before_training(tmp_path):
    net = _network_of(
        tmp_path, 'mmseg::mask2former/mask2former_r50_8xb2-90k_'
        'cityscapes-512x1024.py')
    cfg = _user_config(tmp_path, net)
    with pytest.raises(ValueError, match=r"model.decode_head.type = "
                       r"'Mask2FormerHead': a query-based head"):
        check_config(cfg)


def test_multimodal_segmentor_is_refused(tmp_path):
    cfg = _user_config(tmp_path, 'mmseg::_base_/models/san_vit-b16.py')
    with pytest.raises(ValueError, match=r'takes no .*MultimodalEncoder'):
        check_config(cfg)


def test_missing_optional_package_is_named(tmp_path, monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec',
        lambda name, *a: None if name == 'mmpretrain' else find_spec(name, *a))
    cfg = _user_config(tmp_path, _network_of(
        tmp_path, 'mmseg::_base_/models/upernet_convnext.py'))
    with pytest.raises(ModuleNotFoundError, match=r"model.backbone.type = "
                       r"'mmpretrain.ConvNeXt'.*pip install mmpretrain"):
        check_config(cfg)


def test_value_head_channels_checked_against_the_backbone(tmp_path):
    body = ('model = dict(_base_.calsfda_model, value_input="backbone", '
            'value_head=dict(type="ECEValueNetHead", in_channels=2048, '
            'in_index=3), backbone=dict(depth=18, init_cfg=None), '
            'decode_head=dict(in_channels=512, c1_in_channels=64), '
            'auxiliary_head=dict(in_channels=256))\n')
    cfg = _user_config(tmp_path,
                       'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
                       recipe='value_gta5', body=body)
    cfg.load_from = None
    with pytest.raises(ValueError, match=r'model.value_head.in_channels = '
                       r'2048.*has 512 channels: set in_channels=512'):
        check_config(cfg)
    cfg.model.value_head.in_channels = 512
    check_config(cfg)


def test_auxiliary_heads_warm_up_when_named(tmp_path):
    cfg = _user_config(tmp_path, 'mmseg::_base_/models/pspnet_r50-d8.py',
                       recipe='value_gta5')
    cfg.model.update(backbone=dict(cfg.model.backbone, depth=18),
                     pretrained=None)
    cfg.model.decode_head.in_channels = 512
    cfg.model.auxiliary_head.in_channels = 256
    model = MODELS.build(cfg.model)
    aux_bn = model.auxiliary_head.convs[0].bn
    images = [dict(inputs=[torch.randint(0, 255, (3, 64, 64),
                                         dtype=torch.uint8)])
              for _ in range(2)]
    warmup_bn_stats(model, images, 2, modules=('value_head', ))
    assert torch.equal(aux_bn.running_mean, torch.zeros_like(
        aux_bn.running_mean))  # not named: untouched
    warmup_bn_stats(model, images, 2, modules=('auxiliary_head', ))
    assert not torch.equal(aux_bn.running_mean, torch.zeros_like(
        aux_bn.running_mean))


def test_stdc_labels_in_train_mode_at_batch_size_one(tmp_path):
    """label_bn_mode='train' on a network with BN on pooled context."""
    cfg = _user_config(tmp_path, 'mmseg::_base_/models/stdc.py',
                       recipe='target_gta2cs')
    model = MODELS.build(cfg.model).eval()
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.train()
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        with pytest.raises(ValueError, match='more than 1 value'):
            model.predict(inputs)
        with OneValueGuard(norms):
            result = model.predict(inputs)
    assert result[0].seg_logits.data.shape == (19, 64, 64)
    assert all(module.training for module in norms)


def test_test_time_augmentation_wrapper_checks_the_wrapped_model(tmp_path):
    cfg = _user_config(tmp_path, 'mmseg::_base_/models/pspnet_r50-d8.py')
    cfg.model = dict(type='SegTTAModel', module=cfg.model)
    check_config(cfg)  # as tools/test.py --tta builds it
    cfg.model.module.decode_head.type = 'Mask2FormerHead'
    with pytest.raises(ValueError, match='a query-based head'):
        check_config(cfg)
