"""Helpers shared by the tests."""
import glob
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_calsfda.testing import ROOT, load_stage_config, tiny_config

# the tests' names for the shared helpers (mmseg_calsfda.testing)
stage_config = load_stage_config
tiny_cfg = tiny_config


def tiny_source_cfg(synthetic_root, work_dir, max_iters=4, interval=2):
    """Stage 1 (GTA5 source) shrunk to a few iterations on tiny data."""
    return tiny_cfg('deeplabv2_r101_gta5_source.py', synthetic_root,
                    work_dir, max_iters, interval)


def run_cli(args, timeout=300, **env):
    """Runs a command (a tool, as a user would) from the repository root
    with extra environment variables; returns the CompletedProcess."""
    return subprocess.run(args, cwd=ROOT, env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=timeout)


def load_tool(name):
    """``tools/<name>.py`` (e.g. ``'estimate_ece'``,
    ``'model_converters/calsfda2mmseg'``) as a module, its folder
    importable as when it runs as a script, to test its functions in this
    process."""
    path = osp.join(ROOT, 'tools', f'{name}.py')
    folder = osp.dirname(path)
    if folder not in sys.path:
        sys.path.append(folder)  # last: its scripts shadow no module
    spec = importlib.util.spec_from_file_location(
        'calsfda_tool_' + name.replace('/', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scalars(work_dir):
    """The json log lines (vis_data/scalars.json) of the latest run in
    work_dir."""
    logs = sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data',
                                     'scalars.json')))
    assert logs, f'no scalars.json under {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f]


# A tiny stage-2 segmentor (a ResNet-18 of 8 channels, a value head) and
# batches for it: the value head's, the segmentor's and the BN warm-up's
# tests (tests/models/test_value_net.py, tests/engine/test_bn_warmup.py)
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


def probs_segmentor(**kwargs):
    return tiny_segmentor(
        value_input='probs',
        value_head=dict(type='ECEValueNetHead', channels=16), **kwargs)
