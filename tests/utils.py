"""Helpers shared by the tests."""
import glob
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

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
