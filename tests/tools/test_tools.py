"""tools/train.py, tools/test.py and `mim train` as a user runs them, and
the messages they give for bad input."""
import os.path as osp
import shutil
import sys

import pytest

from tests.utils import ROOT, run_cli, tiny_source_cfg


def run(args):
    return run_cli(args, PYTHONWARNINGS='ignore')


@pytest.fixture
def tiny_config(synthetic_root, tmp_path):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'work', max_iters=2)
    path = str(tmp_path / 'tiny_source.py')
    cfg.dump(path)
    return path


@pytest.mark.slow
def test_train_then_test_cli(tiny_config, tmp_path):
    work = str(tmp_path / 'cli')
    res = run([sys.executable, 'tools/train.py', tiny_config, '--work-dir',
               work])
    assert res.returncode == 0, res.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    res = run([sys.executable, 'tools/test.py', tiny_config,
               osp.join(work, 'iter_2.pth'), '--work-dir', work])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'cECE' in res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('mim') is None and not osp.exists(
    osp.join(osp.dirname(sys.executable), 'mim')), reason='openmim missing')
def test_mim_train(tiny_config, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    work = str(tmp_path / 'mim')
    res = run([mim, 'train', 'mmsegmentation', tiny_config, '--work-dir',
               work])
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


def test_missing_config_path():
    res = run([sys.executable, 'tools/train.py', 'configs/nope.py'])
    assert res.returncode != 0
    assert "config file 'configs/nope.py' does not exist" in res.stderr


def test_unknown_type_names_the_key(tiny_config):
    res = run([sys.executable, 'tools/train.py', tiny_config,
               '--cfg-options', 'model.decode_head.type=DLV3Head'])
    assert res.returncode != 0
    assert "model.decode_head.type = 'DLV3Head' is not registered" in \
        res.stderr


def assert_one_line_error(res, config: str) -> str:
    """A config mistake: exit status 2, one line on stderr naming the
    config, no traceback and no warning around it."""
    assert res.returncode == 2, (res.stdout + res.stderr)[-3000:]
    assert res.stderr.count('\n') == 1, res.stderr[-3000:]
    assert res.stderr.startswith(f'error: {config}: ')
    return res.stderr


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_misspelt_type_is_one_line(tiny_config, tool):
    """Run as a user would (warnings not silenced by the environment)."""
    ckpt = [] if tool == 'train' else ['/any/ckpt.pth']
    res = run_cli([sys.executable, f'tools/{tool}.py', tiny_config, *ckpt,
                   '--cfg-options', 'model.decode_head.type=DLV2Haed'])
    err = assert_one_line_error(res, tiny_config)
    assert "model.decode_head.type = 'DLV2Haed' is not registered" in err


def test_copied_stage_config_is_one_line_with_the_fix(tmp_path):
    copy = tmp_path / 'deeplabv2_r101_gta5_source.py'
    shutil.copy(osp.join(ROOT, 'configs', 'calsfda', copy.name), copy)
    res = run_cli([sys.executable, 'tools/train.py', str(copy)])
    err = assert_one_line_error(res, str(copy))
    assert "_base_ file '../_base_/models/deeplabv2_r101-d8.py'" in err
    assert osp.join(ROOT, 'configs', '_base_', 'calsfda',
                    'source_gta5.py') in err


def test_own_config_outside_the_repository(tmp_path):
    """The README's way: inherit a shipped stage config by absolute path.
    train.py loads it and gets as far as checking it (the missing
    load_from below is the first thing it finds)."""
    own = tmp_path / 'my_source.py'
    stage1 = osp.join(ROOT, 'configs', 'calsfda',
                      'deeplabv2_r101_gta5_source.py')
    own.write_text(f'_base_ = {stage1!r}\n'
                   "load_from = '/no/such/ckpt.pth'\n")
    res = run_cli([sys.executable, 'tools/train.py', str(own)])
    err = assert_one_line_error(res, str(own))
    assert "load_from = '/no/such/ckpt.pth': no such checkpoint" in err


def test_unknown_loss_type_names_the_key(tiny_config):
    res = run([sys.executable, 'tools/train.py', tiny_config,
               '--cfg-options', 'default_hooks.logger.type=NoSuchHook'])
    assert res.returncode != 0
    assert "default_hooks.logger.type = 'NoSuchHook'" in res.stderr


def test_missing_load_from_names_the_file(tiny_config):
    res = run([sys.executable, 'tools/train.py', tiny_config,
               '--cfg-options', 'load_from=/no/such/ckpt.pth'])
    assert res.returncode != 0
    assert "load_from = '/no/such/ckpt.pth': no such checkpoint" in \
        res.stderr


def test_plugin_import_failure_names_the_module(tmp_path):
    cfg = tmp_path / 'bad.py'
    cfg.write_text("custom_imports = dict(imports=['mmseg_calsfda_typo'], "
                   "allow_failed_imports=False)\n")
    res = run([sys.executable, 'tools/train.py', str(cfg)])
    assert res.returncode != 0
    assert 'mmseg_calsfda_typo' in res.stderr


def test_amp_without_gpu_is_a_clear_message(tiny_config):
    import torch
    if torch.cuda.is_available():
        pytest.skip('has a GPU')
    res = run([sys.executable, 'tools/train.py', tiny_config, '--amp'])
    assert res.returncode != 0
    assert '--amp needs a CUDA GPU' in res.stderr


def test_more_torchrun_processes_than_gpus_is_named(monkeypatch):
    """On a GPU node, LOCAL_RANK beyond the visible GPUs fails early with
    the fix, not with MMEngine's IndexError in its logger."""
    import torch

    from mmseg_calsfda.config_check import check_launcher_devices
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    check_launcher_devices('pytorch')
    monkeypatch.setenv('LOCAL_RANK', '1')
    check_launcher_devices('none')  # not torchrun: nothing to check
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK=1 has no GPU: 1 "
                       r"visible .*CUDA_VISIBLE_DEVICES='0'.*dist_train.sh "
                       r'CONFIG 1'):
        check_launcher_devices('pytorch')


def test_demo_help_says_what_it_writes_and_the_defaults():
    res = run([sys.executable, 'tools/demo.py', '--help'])
    assert res.returncode == 0, res.stderr[-3000:]
    text = ' '.join(res.stdout.split())
    for phrase in ('results.json', 'results.md', 'reliability_diagram.png',
                   'console.log', 'About 5 minutes',
                   '(default: work_dirs/demo)', '(default: 0)',
                   '(default: cpu)'):
        assert phrase in text, phrase
