"""tools/compare.py: baselines and selection criteria on one seed."""
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.utils import run_cli


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """One --tiny compare.py run, shared by the tests of this module."""
    work_dir = tmp_path_factory.mktemp('compare')
    res = run_cli([sys.executable, 'tools/compare.py', '--tiny', '--seed',
                   '0', '--work-dir', str(work_dir), '--methods', 'adabn',
                   'cbst', 'target_supervised'], timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return work_dir


def test_compare_tiny_writes_every_criterion(tiny_run):
    tmp_path = tiny_run
    result = json.loads((tmp_path / 'comparison.json').read_text())
    assert result['seed'] == 0 and result['shift'] == 'default'
    assert list(result['methods']) == ['adabn', 'cbst', 'target_supervised']
    # the value head's ranking of target val images is kept beside them
    assert {'spearman', 'pearson', 'mean_true_ECE'} <= set(
        result['ece_estimation'])
    for name, method in result['methods'].items():
        rows = method['checkpoints']
        assert len(rows) == (1 if name == 'adabn' else 2)
        assert set(method['target_mIoU_selected']) == {
            'estECE', 'entropy', 'max_prob', 'last'}
        oracle = max(row['target_mIoU'] for row in rows)
        assert method['target_mIoU_oracle'] == oracle
        assert method['target_mIoU_last'] == rows[-1]['target_mIoU']
        by_ece = min(rows, key=lambda row: row['estECE'])
        assert method['target_mIoU_selected']['estECE'] == \
            by_ece['target_mIoU']
        by_prob = max(rows, key=lambda row: row['max_prob'])
        assert method['regret']['max_prob'] == round(
            oracle - by_prob['target_mIoU'], 4)
        for row in rows:
            assert 0 <= row['entropy'] <= 100
            assert 0 <= row['max_prob'] <= 100
    # the CBST run scored pseudo-labels without the ECE scaling
    cfg = (tmp_path / 'cbst').glob('*/vis_data/config.py')
    assert 'ece_scaling=False' in next(cfg).read_text()
    assert (tmp_path / 'comparison.png').stat().st_size > 0
    assert (tmp_path / 'comparison.md').read_text().count('\n| ') == 4


def test_bad_method_shift_and_reused_work_dir(tmp_path):
    res = run_cli([sys.executable, 'tools/compare.py', '--seed', '0',
                   '--work-dir', str(tmp_path), '--methods', 'dann'])
    assert res.returncode != 0
    assert "unknown method(s) ['dann']; valid: source_only, adabn" in \
        res.stderr
    res = run_cli([sys.executable, 'tools/compare.py', '--seed', '0',
                   '--work-dir', str(tmp_path), '--shift', 'night'])
    assert "unknown --shift 'night'; valid: default" in res.stderr
    (tmp_path / 'run.json').write_text(json.dumps(
        dict(seed=1, shift='default', tiny=True)))
    res = run_cli([sys.executable, 'tools/compare.py', '--tiny', '--seed',
                   '0', '--work-dir', str(tmp_path)])
    assert res.returncode != 0
    assert 'holds a run of' in res.stderr and 'choose another' in res.stderr
    assert not (tmp_path / 'data').exists()


def test_stage3_variants_refuses_unknown_changes(tmp_path):
    res = run_cli([sys.executable, 'tools/experiments/stage3_variants.py',
                   str(tmp_path), '--variants', 'noent-dropout'])
    assert res.returncode != 0
    assert "unknown change(s) ['dropout'] in 'noent-dropout'; valid: " \
        "shipped, noent" in res.stderr


def test_stage3_variants_diagnostics(tiny_run):
    """lr0 changes nothing after the norm-affine epoch; gtmask gives the
    kept pixels their true class; fullnet trains the backbone's convs."""
    res = run_cli([sys.executable, 'tools/experiments/stage3_variants.py',
                   str(tiny_run), '--variants', 'lr0', 'gtmask-fullnet',
                   '--rounds', '1', '--epochs', '2'], timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    rows = json.loads((tiny_run / 'variants.json').read_text())
    assert set(rows) == {'lr0', 'gtmask-fullnet'}
    assert len(rows['lr0']['mIoU']) == 2
    assert rows['lr0']['mIoU'][0] == rows['lr0']['mIoU'][1]
    assert rows['lr0']['estECE'][0] == rows['lr0']['estECE'][1]
    variant = tiny_run / 'variant_gtmask-fullnet'
    labels = list((variant / 'pseudo_labels' / 'round_0').rglob('*.png'))
    gt_root = tiny_run / 'data' / 'cityscapes' / 'gtFine' / 'train'
    kept_total = 0
    for path in labels:
        label = np.array(Image.open(path))
        rel = path.relative_to(variant / 'pseudo_labels' / 'round_0')
        gt = np.array(Image.open(gt_root / rel.parent / (
            rel.stem + '_gtFine_labelTrainIds.png')))
        kept = label < 19
        np.testing.assert_array_equal(label[kept], gt[kept])
        kept_total += kept.sum()
    assert labels and kept_total > 0

    def conv(path):
        state = torch.load(path, map_location='cpu')['state_dict']
        return state['backbone.layer1.0.conv1.weight']

    stage2 = tiny_run / 'stage2_value' / 'iter_2.pth'
    assert not torch.equal(conv(stage2), conv(variant / 'epoch_2.pth'))
    assert torch.equal(conv(stage2),
                       conv(tiny_run / 'variant_lr0' / 'epoch_2.pth'))


def test_value_head_shift_puts_the_transform_in_stage_2(tiny_run):
    res = run_cli([sys.executable, 'tools/experiments/value_head_shift.py',
                   str(tiny_run), '--no-baseline', '--prob', '1'],
                  timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    rows = json.loads(
        (tiny_run / 'value_head_shift_1_0.8_0.5.json').read_text())
    assert list(rows) == ['stage2_value_shift_1_0.8_0.5']
    assert 'spearman' in rows['stage2_value_shift_1_0.8_0.5']
    cfg = next((tiny_run / 'stage2_value_shift_1_0.8_0.5').glob(
        '*/vis_data/config.py')).read_text()
    assert "type='ClassConditionalColorShift'" in cfg and 'prob=1' in cfg
