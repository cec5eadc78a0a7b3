"""tools/test.py --tta: test-time augmentation on the shipped configs."""
import sys

from mmseg_calsfda.testing import tiny_config
from tests.utils import run_cli


def run(*args):
    return run_cli([sys.executable, 'tools/test.py', *args],
                   PYTHONWARNINGS='ignore')


def tiny_tta_config(name, synthetic_root, tmp_path) -> str:
    """A shipped stage config at the tests' size, its TTA scales (ratios
    0.5-1.75 of the evaluation resolution) shrunk as its test scale is."""
    cfg = tiny_config(name, synthetic_root, tmp_path / 'work')
    width, height = cfg.test_pipeline[1].scale  # the shrunk test scale
    for step, ratio in zip(cfg.tta_pipeline[1].transforms[0],
                           cfg.img_ratios):
        step.scale = (int(width * ratio), int(height * ratio))
    path = str(tmp_path / name)
    cfg.dump(path)
    return path


def test_tta_on_a_shipped_config(stage2, synthetic_root, tmp_path):
    """Stage 1's config (IoUMetric + ECEMetric) and stage 2's
    (EstimatedECEMetric with labels) test with --tta."""
    config, stage2_ckpt, stage1_ckpt = stage2
    for name, ckpt, key in [
        ('deeplabv2_r101_gta5_source.py', stage1_ckpt, 'cECE'),
        ('deeplabv2_r101_gta5_value.py', stage2_ckpt, 'ece_spearman'),
    ]:
        config = tiny_tta_config(name, synthetic_root, tmp_path)
        res = run(config, ckpt, '--tta', '--work-dir', str(tmp_path / 'tta'))
        assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
        out = res.stdout + res.stderr
        assert 'CalSFDATTAModel' in out and 'Iter(test) [4/4]' in out
        assert key in out.split('Iter(test) [4/4]')[-1]


def test_tta_without_tta_pipeline_is_one_line(synthetic_root, tmp_path):
    cfg = tiny_config('deeplabv2_r101_gta5_source.py', synthetic_root,
                      tmp_path / 'work')
    cfg.pop('tta_pipeline')
    config = str(tmp_path / 'no_tta.py')
    cfg.dump(config)
    res = run(config, str(tmp_path / 'any.pth'), '--tta')
    assert res.returncode == 2, (res.stdout + res.stderr)[-3000:]
    assert res.stderr.count('\n') == 1
    assert res.stderr.startswith(f'error: {config}: --tta needs '
                                 'tta_pipeline in the config')
