"""tools/dist_train.sh with two CPU processes (gloo): trains, validates,
and gives the same results as one process with the same total batch."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.utils import run_cli, tiny_cfg, tiny_source_cfg

RANDOM_TRANSFORMS = ('RandomCrop', 'RandomFlip', 'PhotoMetricDistortion')


def train(config, work_dir, num_procs, port):
    """tools/train.py (one process) or tools/dist_train.sh (torchrun); CPU
    processes (gloo) also on a machine with GPUs."""
    cmd = (['bash', 'tools/dist_train.sh', config, str(num_procs)]
           if num_procs > 1 else [sys.executable, 'tools/train.py', config])
    res = run_cli(cmd + ['--work-dir', str(work_dir)], timeout=600,
                  PORT=str(port), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='',
                  PATH=osp.dirname(sys.executable) + os.pathsep +
                  os.environ['PATH'])
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    return out


def deterministic(cfg, total_batch, num_procs):
    """Same data on 1 and 2 processes: no random augmentation, and the
    total batch split over the processes (each rank's share of the
    sampler's order is the one-process batch, interleaved)."""
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        pipeline = []
        for step in loader.dataset.pipeline:
            if step['type'] == 'RandomResize':
                step = dict(type='Resize', scale=step['scale'],
                            keep_ratio=True)
            if step['type'] not in RANDOM_TRANSFORMS:
                pipeline.append(step)
        loader.dataset.pipeline = pipeline
    cfg.train_dataloader.batch_size = total_batch // num_procs
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


def train_on_cpus(cfg, path, work_dir, port):
    """Two gloo processes with plain BN (SyncBN is CUDA-only)."""
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.dump(str(path))
    return train(str(path), work_dir, 2, port)


@pytest.mark.slow
def test_dist_train_two_processes(synthetic_root, tmp_path, free_port):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'work', max_iters=2)
    out = train_on_cpus(cfg, tmp_path / 'tiny.py', tmp_path / 'work',
                        free_port)
    assert 'Distributed training: True' in out
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    assert osp.islink(tmp_path / 'work' / 'best_cECE.pth')
    # stage 2 on two processes: frozen segmentor, the value head trains
    cfg = tiny_cfg('deeplabv2_r101_gta5_value.py', synthetic_root,
                   tmp_path / 'value', max_iters=2, interval=2, lr=1e-3)
    cfg.load_from = str(tmp_path / 'work' / 'best_cECE.pth')
    out = train_on_cpus(cfg, tmp_path / 'value.py', tmp_path / 'value',
                        free_port)
    assert 'ece_spearman' in out
    assert osp.islink(tmp_path / 'value' / 'best_ece_mse.pth')


@pytest.mark.slow
def test_stage1_two_processes_equal_one(synthetic_root, tmp_path, free_port):
    """CE + DiffECE training and ECE validation: 2 processes x batch 2 ==
    1 process x batch 4. GroupNorm, so no statistic depends on how the
    batch is split (BatchNorm would need SyncBN, which is CUDA-only)."""
    runs = {}
    for procs in (1, 2):
        work = tmp_path / f'procs{procs}'
        cfg = tiny_source_cfg(synthetic_root, work, max_iters=3, interval=3)
        cfg.model.backbone.norm_cfg = dict(type='GN', num_groups=8,
                                           requires_grad=True)
        cfg.custom_hooks = [dict(type='ECELossWarmupHook', start_iter=1)]
        deterministic(cfg, total_batch=4, num_procs=procs)
        config = str(tmp_path / f'stage1_{procs}.py')
        cfg.dump(config)
        train(config, work, procs, free_port)
        runs[procs] = (
            torch.load(work / 'iter_3.pth', map_location='cpu')['state_dict'],
            json.loads((work / 'selection.json').read_text())['history'])
    (one, one_val), (two, two_val) = runs[1], runs[2]
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5,
                                   msg=key)
    assert len(one_val) == len(two_val) == 1
    for key in ('ECE', 'cECE', 'mIoU'):
        assert two_val[0][key] == pytest.approx(one_val[0][key], abs=1e-3)


@pytest.mark.slow
def test_pseudo_label_round_two_processes_equal_one(synthetic_root, stage2,
                                                    tmp_path, free_port):
    """BN warm-up, thresholds and every pseudo-label PNG of a round: the
    same on 2 processes as on 1 (statistics are all-reduced)."""
    rounds = {}
    for procs in (1, 2):
        work = tmp_path / f'procs{procs}'
        cfg = tiny_cfg('deeplabv2_gta2cs.py', synthetic_root, work,
                       max_epochs=1, lr=1e-3)
        cfg.load_from = stage2[1]
        cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
        self_training, bn_warmup = cfg.custom_hooks
        self_training.epochs_per_round = 1
        self_training.bn_warmup_batches = 100  # every image, on any split
        bn_warmup.num_batches = 100
        deterministic(cfg, total_batch=2, num_procs=procs)
        config = str(tmp_path / f'target_{procs}.py')
        cfg.dump(config)
        train(config, work, procs, free_port)
        rounds[procs] = work / 'pseudo_labels' / 'round_0'
    one, two = (json.loads((rounds[p] / 'summary.json').read_text())
                for p in (1, 2))
    np.testing.assert_allclose(two['thresholds'], one['thresholds'],
                               atol=1e-5)
    np.testing.assert_allclose(two['class_weights'], one['class_weights'],
                               atol=1e-5)
    pngs = sorted(p.relative_to(rounds[1])
                  for p in rounds[1].rglob('*.png'))
    assert pngs and pngs == sorted(p.relative_to(rounds[2])
                                   for p in rounds[2].rglob('*.png'))
    for name in pngs:
        np.testing.assert_array_equal(
            np.array(Image.open(rounds[2] / name)),
            np.array(Image.open(rounds[1] / name)), err_msg=str(name))


def test_sync_bn_on_cpu_processes_names_the_key(synthetic_root, tmp_path,
                                                free_port):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'work', max_iters=2)
    cfg.model.backbone.norm_cfg = dict(type='SyncBN', requires_grad=True)
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    with pytest.raises(AssertionError, match=r'model\.backbone\.norm_cfg '
                       r'is SyncBN, which needs CUDA.*norm_cfg\.type=BN'):
        train(config, tmp_path / 'work', 2, free_port)


def test_close_process_group(tmp_path):
    """The entry points' last step: tears a started group down, and is a
    no-op without one (single-process runs)."""
    import torch.distributed as dist

    from mmseg_calsfda.engine import close_process_group
    close_process_group()  # nothing started
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        close_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
