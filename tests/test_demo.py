"""The README's main command, in its tiny mode: runs end to end."""
import json
import sys

from tests.utils import run_cli


def test_demo_tiny(tmp_path):
    res = run_cli([sys.executable, 'tools/demo.py', '--tiny', '--work-dir',
                   str(tmp_path)], timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    results = json.loads((tmp_path / 'results.json').read_text())
    keys = {'source_val_mIoU', 'target_mIoU', 'target_ECE', 'target_cECE'}
    assert keys <= set(results['source_only'])
    for key in keys:
        assert 0 <= results['source_only'][key] <= 100
    assert {'target_mIoU', 'target_cECE'} <= set(results['ce_only'])
    assert {'target_mIoU', 'target_ECE', 'target_cECE'} <= set(
        results['adabn_only'])
    assert {'target_mIoU', 'target_ECE', 'target_cECE'} <= set(
        results['adapted'])
    assert {'ece_selected_mIoU', 'oracle_mIoU', 'last_mIoU'} <= set(
        results['selection'])
    assert results['selection']['oracle_mIoU'] >= results['selection'][
        'ece_selected_mIoU']
    est = results['ece_estimation']
    for key in ('spearman', 'spearman_no_warmup', 'pearson'):
        assert -1 <= est[key] <= 1 or est[key] != est[key]  # NaN if constant
    assert (tmp_path / 'results.md').read_text().startswith('| model |')
    for stage in ('stage1_source', 'stage3_target'):
        assert (tmp_path / stage / 'eval_target_val' /
                'reliability_diagram.png').exists()
