"""Stage 2: ECEValueNetHead, CalSFDASegmentor, BN warm-up, estimated ECE."""
import os.path as osp

import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint
from mmengine.structures import PixelData
from mmseg.registry import MODELS, RUNNERS
from mmseg.structures import SegDataSample

from mmseg_calsfda.calibration import classwise_ece
from mmseg_calsfda.engine import warmup_bn_stats
from mmseg_calsfda.evaluation import EstimatedECEMetric
from tests.utils import tiny_cfg, tiny_source_cfg

NUM_CLASSES = 5


def tiny_segmentor(stage='value', **kwargs):
    cfg = dict(
        type='CalSFDASegmentor',
        stage=stage,
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
            seg_pad_val=255, size=(32, 32)),
        backbone=dict(type='ResNetV1c', depth=18, base_channels=8,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=dict(type='BN')),
        decode_head=dict(type='DLV2Head', in_channels=64, in_index=3,
                         dilations=(1, 2), num_classes=NUM_CLASSES,
                         loss_decode=dict(type='CrossEntropyLoss')),
        # the reference's input: the last backbone feature map
        value_input='backbone',
        value_head=dict(type='ECEValueNetHead', in_channels=64,
                        in_index=3, channels=16),
        test_cfg=dict(mode='whole'))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 255, (3, size, size), generator=g,
                                    dtype=torch.uint8))
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(
            0, NUM_CLASSES, (1, size, size), generator=g))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size),
                            padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


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
    with pytest.raises(ValueError, match="pool must be 'bilinear' or 'avg'"):
        MODELS.build(dict(type='ECEValueNetHead', pool='max'))


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


def probs_segmentor(**kwargs):
    return tiny_segmentor(
        value_input='probs',
        value_head=dict(type='ECEValueNetHead', channels=16), **kwargs)


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


def test_probs_input_warmup_sees_the_probabilities():
    model = probs_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(2)]
    with torch.no_grad():
        probs = torch.cat([
            model.decode_head.forward(model.extract_feat(
                model.data_preprocessor(b, False)['inputs'])).softmax(1)
            for b in batches
        ])
    warmup_bn_stats(model, batches, num_batches=2)
    torch.testing.assert_close(
        model.value_head.bn.running_mean,
        probs.transpose(0, 1).flatten(1).mean(1), rtol=1e-5, atol=1e-6)


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


def test_warmup_sets_running_stats_to_feature_moments():
    model = tiny_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(3)] + [batch(n=1, seed=9)]
    feats = []
    with torch.no_grad():
        for b in batches:
            inputs = model.data_preprocessor(b, False)['inputs']
            feats.append(model.extract_feat(inputs)[3])
    x = torch.cat(feats).double().transpose(0, 1).flatten(1)
    summary = warmup_bn_stats(model, batches, num_batches=10)
    assert summary == dict(layers=1, batches=4, images=7)
    bn = model.value_head.bn
    torch.testing.assert_close(bn.running_mean.double(), x.mean(1),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var.double(), x.var(1),
                               rtol=1e-4, atol=1e-6)
    assert not model.training and not bn.training  # modes restored
    # deterministic and limited to num_batches
    mean = bn.running_mean.clone()
    warmup_bn_stats(model, batches, num_batches=10)
    torch.testing.assert_close(bn.running_mean, mean)
    assert warmup_bn_stats(model, batches, 1)['images'] == 2


def test_warmup_backbone_layers_and_bad_modules():
    model = tiny_segmentor().eval()
    before = model.backbone.layer4[0].bn1.running_mean.clone()
    summary = warmup_bn_stats(model, [batch()], 1,
                              modules=('backbone', 'value_head'))
    assert summary['layers'] > 10
    assert not torch.equal(before, model.backbone.layer4[0].bn1.running_mean)
    with pytest.raises(ValueError, match='no BatchNorm layer'):
        warmup_bn_stats(model, [batch()], 1, modules=('nothing', ))


def test_checkpoint_round_trip_keeps_value_head(tmp_path):
    model = tiny_segmentor()
    torch.nn.init.normal_(model.value_head.fc.weight)
    path = str(tmp_path / 'ckpt.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), path)
    other = tiny_segmentor()
    load_checkpoint(other, path, map_location='cpu', strict=True)
    torch.testing.assert_close(other.value_head.fc.weight,
                               model.value_head.fc.weight)


def test_estimated_ece_metric():
    metric = EstimatedECEMetric(with_labels=True)
    metric.dataset_meta = dict(classes=[str(i) for i in range(NUM_CLASSES)])
    g = torch.Generator().manual_seed(0)
    samples, truth = [], []
    for i in range(6):
        logits = torch.randn(NUM_CLASSES, 8, 8, generator=g) * (i + 1)
        label = torch.randint(0, NUM_CLASSES, (8, 8), generator=g)
        true = float(classwise_ece(logits[None], label[None], 10, 1e-5)[0])
        truth.append(true)
        samples.append(dict(est_ece=true * 0.5 + 0.01,
                            seg_logits=dict(data=logits),
                            gt_sem_seg=dict(data=label[None])))
    metric.process({}, samples)
    result = metric.evaluate(6)
    assert result['ece_spearman'] == pytest.approx(1.0)
    assert result['ece_pearson'] == pytest.approx(1.0)
    mean_est = sum(t * 0.5 + 0.01 for t in truth) / 6
    assert result['estECE'] == pytest.approx(mean_est * 100, abs=1e-3)
    assert result['trueECE'] == pytest.approx(sum(truth) / 6 * 100,
                                              abs=1e-3)
    label_free = EstimatedECEMetric()
    label_free.process({}, [dict(est_ece=0.2), dict(est_ece=0.4)])
    assert label_free.evaluate(2) == dict(estECE=pytest.approx(30.0))
    with pytest.raises(KeyError, match='value head'):
        label_free.process({}, [dict(seg_logits=None)])


def test_runner_stage_two_trains_only_the_head(synthetic_root, tmp_path):
    src = tiny_source_cfg(synthetic_root, tmp_path / 'src', max_iters=2)
    RUNNERS.build(src).train()
    stage1 = str(tmp_path / 'src' / 'best_cECE.pth')
    assert osp.isfile(stage1)

    cfg = tiny_cfg('deeplabv2_r101_gta5_value.py', synthetic_root,
                   tmp_path / 'value', max_iters=4, interval=2, lr=1e-3)
    cfg.load_from = stage1
    cfg.custom_hooks = [dict(
        type='BNWarmupHook', before='test', num_batches=2,
        dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='CheckedCityscapesDataset',
                data_root=osp.join(synthetic_root, 'cityscapes'),
                data_prefix=dict(img_path='leftImg8bit/train'),
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='Resize', scale=(128, 64)),
                          dict(type='PackSegInputs')])))]
    runner = RUNNERS.build(cfg)
    runner.train()
    before = torch.load(stage1, map_location='cpu')['state_dict']
    after = runner.model.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key].cpu(), value,
                                   msg=key)  # frozen
    head = [k for k in after if k.startswith('value_head.')]
    assert head and any(k not in before for k in head)
    metrics = runner.val_loop.run()
    assert {'estECE', 'trueECE', 'ece_mse', 'ece_spearman'} <= set(metrics)
    # the hook warms the value head's BN up on target images before testing
    bn = runner.model.value_head.bn
    mean = bn.running_mean.clone()
    runner.test()
    assert not torch.equal(mean, bn.running_mean)
    assert osp.islink(tmp_path / 'value' / 'best_ece_mse.pth')


def _warmup_worker(rank, world_size, port, out_file):
    import torch.distributed as dist
    from mmseg.utils import register_all_modules
    register_all_modules()  # a spawned process starts without the scope
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(4)]
    warmup_bn_stats(model, batches[rank::world_size], num_batches=10)
    if rank == 0:
        bn = model.value_head.bn
        torch.save((bn.running_mean, bn.running_var), out_file)
    dist.destroy_process_group()


def test_warmup_two_processes_equal_one(tmp_path, free_port):
    import torch.multiprocessing as mp
    out_file = str(tmp_path / 'stats.pt')
    mp.spawn(_warmup_worker, args=(2, free_port, out_file), nprocs=2)
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    warmup_bn_stats(model, [batch(n=2, seed=i) for i in range(4)], 10)
    mean, var = torch.load(out_file)
    torch.testing.assert_close(mean, model.value_head.bn.running_mean)
    torch.testing.assert_close(var, model.value_head.bn.running_var)
