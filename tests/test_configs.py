"""Every config under configs/ parses and builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_calsfda.config_check import check_config
from tests.utils import ROOT

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_there_are_configs():
    names = [osp.basename(p) for p in CONFIGS]
    assert 'deeplabv2_r101_gta5_source.py' in names
    assert 'deeplabv2_r101_synthia_source.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(
        imports=['mmseg_calsfda'], allow_failed_imports=False)
    check_config(cfg)
    cfg.model.pretrained = None  # never download in tests
    model = MODELS.build(cfg.model)
    num_classes = model.decode_head.num_classes
    dataset_type = cfg.train_dataloader.dataset.type
    from mmseg.registry import DATASETS
    classes = DATASETS.get(dataset_type).METAINFO['classes']
    assert num_classes == len(classes), (num_classes, dataset_type)


def test_source_stage_selects_lowest_cece():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/deeplabv2_r101_gta5_source.py'))
    losses = [loss['type'] for loss in cfg.model.decode_head.loss_decode]
    assert losses == ['CrossEntropyLoss', 'DiffECELoss']
    assert cfg.default_hooks.checkpoint.save_best == 'cECE'
    assert cfg.default_hooks.checkpoint.rule == 'less'
    metrics = [m['type'] for m in cfg.val_evaluator]
    assert metrics == ['IoUMetric', 'ECEMetric']
    assert cfg.model.backbone.depth == 101
    assert cfg.model.decode_head.type == 'DLV2Head'
    assert cfg.model.pretrained == 'open-mmlab://resnet101_v1c'
