"""Helpers shared by the tests."""
import glob
import json
import os
import os.path as osp
import subprocess

from mmengine.config import Config

from mmseg_calsfda.toy import shrink_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def stage_config(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'calsfda', name))


def tiny_cfg(name, synthetic_root, work_dir, max_iters=4, interval=2,
             **kwargs):
    """A real stage config shrunk to a few iterations on tiny data."""
    os.makedirs(str(work_dir), exist_ok=True)
    kwargs.setdefault('lr', 0.01)
    cfg = shrink_config(
        stage_config(name), synthetic_root, str(work_dir),
        image_size=(64, 128), crop=64, max_iters=max_iters,
        num_evals=max(1, max_iters // interval), batch_size=2,
        base_channels=16, **kwargs)
    cfg.default_hooks.logger.interval = 1
    return cfg


def tiny_source_cfg(synthetic_root, work_dir, max_iters=4, interval=2):
    """Stage 1 (GTA5 source) shrunk to a few iterations on tiny data."""
    return tiny_cfg('deeplabv2_r101_gta5_source.py', synthetic_root,
                    work_dir, max_iters, interval)


def run_cli(args, timeout=300, **env):
    """Runs a command (a tool, as a user would) from the repository root
    with extra environment variables; returns the CompletedProcess."""
    return subprocess.run(args, cwd=ROOT, env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=timeout)


def scalars(work_dir):
    """The json log lines (vis_data/scalars.json) of the latest run in
    work_dir."""
    logs = sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data',
                                     'scalars.json')))
    assert logs, f'no scalars.json under {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f]
