"""Stage 3 on tiny data: rounds, pseudo-labels, label-free selection."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmseg.registry import RUNNERS
from PIL import Image

from mmseg_calsfda.models.losses import SymmetricCELoss
from tests.utils import tiny_cfg


def target_cfg(synthetic_root, work_dir, stage2_ckpt, rounds=2,
               epochs_per_round=2):
    cfg = tiny_cfg('deeplabv2_gta2cs.py', synthetic_root, work_dir,
                   max_epochs=rounds * epochs_per_round, lr=1e-3)
    cfg.load_from = stage2_ckpt
    cfg.custom_hooks[0].epochs_per_round = epochs_per_round
    cfg.custom_hooks[0].bn_warmup_batches = 2
    cfg.custom_hooks[1].num_batches = 2
    return cfg


def test_two_rounds_with_label_free_selection(synthetic_root, stage2,
                                              tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    runner = RUNNERS.build(cfg)
    runner.train()
    labels = tmp_path / 'pseudo_labels'
    assert sorted(os.listdir(labels)) == ['round_0', 'round_1']
    for r in (0, 1):
        summary = json.loads((labels / f'round_{r}' / 'summary.json')
                             .read_text())
        assert summary['round'] == r
        assert summary['cb_prop'] == pytest.approx(0.15 + 0.05 * r)
        assert summary['local_prop'] == pytest.approx(0.1 + 0.05 * r)
        assert len(summary['thresholds']) == 19
        assert sum(summary['class_weights']) == pytest.approx(1, abs=1e-4)
        pngs = sorted((labels / f'round_{r}' / 'synthcity').glob('*.png'))
        assert len(pngs) == 6
        label = np.array(Image.open(pngs[0]))
        assert label.shape == (64, 128) and label.dtype == np.uint8
        assert set(np.unique(label)) <= set(range(19)) | {255}
    # the training dataset reads the last round, the SCE its class weights
    dataset = runner.train_dataloader.dataset
    assert dataset.pseudo_label_dir == str(labels / 'round_1')
    sce = [m for m in runner.model.modules()
           if isinstance(m, SymmetricCELoss)][0]
    # the weights the SCE trains with are the round's softmax(1 / tau) at
    # full precision, as the reference's float32 tensor (rounding them once
    # turned ~1e-7 weights into 0 and a batch's CE into 0 / 0)
    summary = json.loads((labels / 'round_1' / 'summary.json').read_text())
    tau = [t if t != 0 else 0.01 for t in summary['thresholds']]
    reference = torch.softmax(torch.tensor([1 / t for t in tau]), 0)
    # (the summary's thresholds are rounded to 6 decimals: rtol, no atol)
    torch.testing.assert_close(sce.class_weight, reference, rtol=1e-2,
                               atol=0)
    torch.testing.assert_close(
        sce.class_weight,
        torch.tensor(summary['class_weights'], dtype=torch.float32),
        rtol=0, atol=0)
    # lr divided by sqrt(2) in round 1
    group = runner.optim_wrapper.param_groups[0]
    assert group['lr'] == pytest.approx(group['round_base_lr'] / 2**0.5)
    # label-free selection, with the labelled report beside it
    selection = json.loads((tmp_path / 'selection.json').read_text())
    assert selection['criterion'] == dict(key='estECE', rule='less')
    assert len(selection['history']) == 4
    assert all('mIoU' in r and 'estECE' in r for r in selection['history'])
    best = min(selection['history'], key=lambda r: r['estECE'])
    assert selection['selected'] == best
    assert selection['checkpoint'] == f'best_estECE_epoch_{best["epoch"]}.pth'
    assert (tmp_path / 'best_estECE.pth').is_symlink()
    # the value head never trained on target
    assert not any(p.requires_grad
                   for p in runner.model.value_head.parameters())


def test_freezing_schedule_within_a_round(synthetic_root, stage2, tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=1)
    runner = RUNNERS.build(cfg)
    seen = []

    def record(runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model
        trainable = {n.split('.')[0] for n, p in model.named_parameters()
                     if p.requires_grad}
        bn_params = [n for n, p in model.backbone.named_parameters()
                     if p.requires_grad]
        seen.append((runner.epoch, trainable, bn_params,
                     model.backbone.training))

    from mmengine.hooks import Hook
    hook = Hook()
    hook.after_train_iter = record
    runner.register_hook(hook)
    runner.train()
    first = [s for s in seen if s[0] == 0]
    second = [s for s in seen if s[0] == 1]
    assert first and second
    # epoch 0: only backbone BatchNorm affine parameters, BN in train mode
    assert first[0][1] == {'backbone'}
    assert all('bn' in n or 'stem.1' in n or 'stem.4' in n or
               'stem.7' in n or 'downsample.1' in n for n in first[0][2])
    assert first[0][3]
    # epoch 1: backbone frozen (eval), decode head trains; value head never
    assert second[0][1] == {'decode_head'} and not second[0][3]


@pytest.mark.parametrize('modules', [None, ('value_head', )])
def test_bn_warmup_before_the_pass(synthetic_root, stage2, tmp_path,
                                   monkeypatch, modules):
    """By default (the recipe's ``bn_warmup_modules``) the warm-up before
    the pass re-estimates the backbone's BN layers too (AdaBN: the pass
    labels with target statistics); ``('value_head',)`` only the value
    head's one."""
    from mmseg_calsfda.engine.hooks import self_training_hook
    calls = []
    warmup = self_training_hook.warmup_bn_stats

    def record(model, data, num_batches, modules):
        calls.append(tuple(modules))
        return warmup(model, data, num_batches, modules)

    monkeypatch.setattr(self_training_hook, 'warmup_bn_stats', record)
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=1,
                     epochs_per_round=1)
    if modules is None:  # the class default
        cfg.custom_hooks[0].pop('bn_warmup_modules')
    else:
        cfg.custom_hooks[0].bn_warmup_modules = modules
    expected = modules or ('backbone', 'value_head')
    runner = RUNNERS.build(cfg)
    runner.train()
    assert calls == [expected]
    log = next(tmp_path.glob('*/*.log')).read_text()
    layers = re.search(r"re-estimated (\d+) BatchNorm layer\(s\) under "
                       + re.escape(str(list(expected))), log)
    assert layers
    assert (int(layers.group(1)) > 1) is ('backbone' in expected)


def test_tent_name_filter_trains_only_matching_norm_layers(
        synthetic_root, stage2, tmp_path):
    """tent_name_filter='bn' (the reference): the first epoch trains the
    block BatchNorms only, not the stem or downsample ones."""
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=1,
                     epochs_per_round=1)
    cfg.custom_hooks[0].tent_name_filter = 'bn'
    runner = RUNNERS.build(cfg)
    seen = []

    def record(runner, batch_idx, data_batch=None, outputs=None):
        seen.append([n for n, p in runner.model.backbone.named_parameters()
                     if p.requires_grad])

    from mmengine.hooks import Hook
    hook = Hook()
    hook.after_train_iter = record
    runner.register_hook(hook)
    runner.train()
    trained = seen[0]
    assert trained and all('.bn' in n for n in trained)
    # what the default trains besides: stem and downsample BatchNorms
    names = [n for n, _ in runner.model.backbone.named_parameters()]
    assert any('downsample.1' in n for n in names)
    assert not any('downsample' in n or 'stem' in n for n in trained)


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_label_bn_mode(synthetic_root, stage2, tmp_path, monkeypatch, mode):
    """'train' (the reference) labels with every BatchNorm layer in train
    mode, 'eval' with none; training then sets its own modes."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from mmseg_calsfda.engine.hooks import self_training_hook
    seen = []
    run_pass = self_training_hook.run_pseudo_label_pass

    def record(model, *args, **kwargs):
        seen.append({m.training for m in model.modules()
                     if isinstance(m, _BatchNorm)})
        return run_pass(model, *args, **kwargs)

    monkeypatch.setattr(self_training_hook, 'run_pseudo_label_pass', record)
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=1,
                     epochs_per_round=1)
    cfg.custom_hooks[0].label_bn_mode = mode
    RUNNERS.build(cfg).train()
    assert seen == [{mode == 'train'}]


def test_bad_label_bn_mode_is_named(synthetic_root, stage2, tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    cfg.custom_hooks[0].label_bn_mode = 'batch'
    with pytest.raises(ValueError, match="label_bn_mode.*'batch'"):
        RUNNERS.build(cfg)


def test_resume_mid_round_reuses_finished_labels(synthetic_root, stage2,
                                                 tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=1,
                     epochs_per_round=3)
    cfg.train_cfg.max_epochs = 2  # "killed" after epoch 2 of round 0
    RUNNERS.build(cfg).train()
    png = next((tmp_path / 'pseudo_labels' / 'round_0').rglob('*.png'))
    mtime = png.stat().st_mtime_ns
    # an interrupted pass of the next round left a partial folder behind
    (tmp_path / 'pseudo_labels' / 'round_1.tmp').mkdir()
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1], rounds=2,
                     epochs_per_round=3)
    cfg.train_cfg.max_epochs = 4
    cfg.resume = True
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.epoch == 4
    assert png.stat().st_mtime_ns == mtime  # round 0 reused, not rewritten
    assert sorted(os.listdir(tmp_path / 'pseudo_labels')) == ['round_0',
                                                               'round_1']
    assert runner.train_dataloader.dataset.pseudo_label_dir.endswith(
        'round_1')


def test_checkpoint_without_value_head_names_the_stage(synthetic_root,
                                                       stage2, tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[2])  # stage 1
    with pytest.raises(ValueError, match='no value head.*_value.py'):
        RUNNERS.build(cfg).train()


def test_value_head_unlike_stage_two_names_value_input(synthetic_root,
                                                      stage2, tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    cfg.model.value_input = 'backbone'  # stage 2 read the probabilities
    cfg.model.value_head.in_channels = 128  # the backbone's, as it must be
    with pytest.raises(ValueError, match=r'value_head\.bn\.weight has shape '
                       r'\(19,\), the model.s \(128,\).*value_input'):
        RUNNERS.build(cfg).train()


def test_num_classes_disagreement_names_all_three(synthetic_root, stage2,
                                                  tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    cfg.custom_hooks[0].pseudo_labeler.num_classes = 16
    with pytest.raises(ValueError, match='decode_head.num_classes=19, '
                       'pseudo_labeler.num_classes=16, train dataset '
                       'classes=19'):
        RUNNERS.build(cfg).train()


def test_empty_target_folder_names_the_path(synthetic_root, stage2,
                                            tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    empty = tmp_path / 'empty'
    (empty / 'leftImg8bit' / 'train').mkdir(parents=True)
    cfg.train_dataloader.dataset.data_root = str(empty)
    with pytest.raises(FileNotFoundError, match='no "\\*_leftImg8bit.png" '
                       'images under .*empty'):
        RUNNERS.build(cfg).train()


def test_synthia_target_uses_16_classes(synthetic_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS, METRICS

    from tests.utils import ROOT
    cfg = Config.fromfile(osp.join(ROOT, 'configs/calsfda/'
                                   'deeplabv2_synthia2cs.py'))
    report = cfg.default_hooks.checkpoint.report_dataloader.dataset
    report.data_root = osp.join(synthetic_root, 'cityscapes')
    dataset = DATASETS.build(report)
    assert len(dataset.metainfo['classes']) == 16
    raw = np.array(Image.open(dataset.get_data_info(0)['seg_map_path']))
    label = dataset[0]['data_samples'].gt_sem_seg.data[0].numpy()
    # Cityscapes train ids -> SYNTHIA's 16: terrain/truck/train ignored
    cityscapes_sky, synthia_sky, terrain = 10, 9, 9
    assert ((raw == cityscapes_sky) == (label == synthia_sky)).all()
    assert (label[raw == terrain] == 255).all()
    assert set(np.unique(label)) <= set(range(16)) | {255}
    # pseudo-labels are already in the 16-class space: no remapping
    train = cfg.train_dataloader.dataset
    train.data_root = osp.join(synthetic_root, 'cityscapes')
    train.pseudo_label_dir = '/nowhere'
    pl = DATASETS.build(train)
    assert len(pl.metainfo['classes']) == 16
    assert pl.get_data_info(0)['label_map'] is None
    metric = METRICS.build(cfg.test_evaluator[1])
    assert metric.metric_name == 'mIoU13' and len(metric.classes) == 13


def test_subset_iou_metric():
    import torch
    from mmseg.registry import METRICS
    metric = METRICS.build(dict(type='SubsetIoUMetric', classes=['a', 'c'],
                                metric_name='mIoU2'))
    metric.dataset_meta = dict(classes=['a', 'b', 'c'])
    pred = torch.tensor([[0, 0, 1, 2]])
    gt = torch.tensor([[0, 1, 1, 2]])
    metric.process({}, [dict(pred_sem_seg=dict(data=pred),
                             gt_sem_seg=dict(data=gt))])
    # IoU: a = 1/2, b = 1/2, c = 1 -> mean over {a, c} = 75
    assert metric.evaluate(1) == dict(mIoU2=75.0)
    metric = METRICS.build(dict(type='SubsetIoUMetric', classes=['z']))
    metric.dataset_meta = dict(classes=['a'])
    metric.process({}, [dict(pred_sem_seg=dict(data=pred[:, :1]),
                             gt_sem_seg=dict(data=gt[:, :1]))])
    with pytest.raises(ValueError, match=r"\['z'\]"):
        metric.evaluate(1)
