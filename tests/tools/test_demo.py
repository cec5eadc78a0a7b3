"""The README's main command, in its tiny mode: runs end to end."""
import json
import re
import sys

import pytest

from tests.utils import run_cli

# long end-to-end CLI runs: skip locally with -m 'not slow'
pytestmark = pytest.mark.slow


def test_demo_tiny(tmp_path):
    res = run_cli([sys.executable, 'tools/demo.py', '--tiny', '--work-dir',
                   str(tmp_path)], timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    # the console: stage headers, one labelled line per progress bar (on a
    # pipe), a time line per stage, the result tables and where the results
    # are; the Runners' logs (environment dumps, per-iteration lines) in
    # log files
    assert '\r' not in res.stdout  # no bar drawn over another
    bar = re.compile(r'(train|validate|evaluate \w+|pseudo-labels \(\w+\)) '
                     r'\[=+\] (\d+)/(\d+), ')
    bars = [bar.match(line) for line in res.stdout.splitlines()]
    assert all(m.group(2) == m.group(3) for m in bars if m)  # each ended
    labels = {m.group(1) for m in bars if m}
    assert {'train', 'validate', 'evaluate target_val',
            'evaluate target_val_adabn', 'pseudo-labels (thresholds)'} <= \
        labels, labels
    lines = [line for line, m in zip(res.stdout.splitlines(), bars)
             if m is None]
    assert not any(line.startswith('[') for line in lines)  # unlabelled
    assert len(lines) < 60, res.stdout[-3000:]
    assert sum(line.startswith('== stage') for line in lines) == 4
    assert sum(line.startswith('   done in ') for line in lines) == 5
    closing = res.stdout[res.stdout.index('\n== done in '):]
    for name in ('results.json', 'results.md', 'console.log'):
        assert str(tmp_path / name) in closing
    diagrams = sorted(tmp_path.glob('*/eval_*/reliability_diagram.png'))
    assert len(diagrams) == 5
    assert all(str(path) in closing for path in diagrams)
    assert '| adapted (ECE-selected) | target val |' in res.stdout
    assert 'System environment' not in res.stdout + res.stderr
    assert 'System environment' in (tmp_path / 'console.log').read_text()
    results = json.loads((tmp_path / 'results.json').read_text())
    # the pretrained network by default
    assert results['network'] == 'efficientnet_lite0'
    assert results['seed'] == 0
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
    # the selection summary is that of stage 3's record
    history = json.loads((tmp_path / 'stage3_target' /
                          'selection.json').read_text())['history']
    chosen = min(history, key=lambda row: row['estECE'])
    sel = results['selection']
    assert sel['ece_selected_mIoU'] == chosen['mIoU']
    assert sel['ece_selected_epoch'] == chosen['epoch']
    assert sel['oracle_mIoU'] == max(row['mIoU'] for row in history)
    assert sel['last_mIoU'] == history[-1]['mIoU']
    assert sel['epochs'] == len(history)
    # re-evaluating the chosen checkpoint gives the mIoU recorded for it
    assert results['adapted']['target_mIoU'] == pytest.approx(
        chosen['mIoU'], abs=0.01)
    est = results['ece_estimation']
    assert 0 < est['mean_true_ECE'] < 100
    assert 0 < est['mean_estimated_ECE'] < 100
    # the BN warm-up on target changes what the value head estimates
    assert est['mean_estimated_ECE'] != est['mean_estimated_ECE_no_warmup']
    assert (tmp_path / 'results.md').read_text().startswith('| model |')
    for stage in ('stage1_source', 'stage3_target'):
        assert (tmp_path / stage / 'eval_target_val' /
                'reliability_diagram.png').exists()
