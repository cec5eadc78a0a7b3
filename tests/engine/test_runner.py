"""MMSeg's real Runner on tiny generated data: train, save, select, resume,
load_from, and the ECE warm-up hook."""
import json
import os
import os.path as osp

import torch
from mmseg.registry import RUNNERS

from mmseg_calsfda.models.losses import DiffECELoss
from tests.utils import scalars, tiny_source_cfg


def test_train_select_and_resume(synthetic_root, tmp_path):
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=4, interval=2)
    cfg.custom_hooks = [dict(type='ECELossWarmupHook', start_iter=2)]
    runner = RUNNERS.build(cfg)
    runner.train()
    files = set(p.name for p in tmp_path.iterdir())
    assert 'iter_4.pth' in files and 'iter_2.pth' not in files  # keep 1
    best = [f for f in files if f.startswith('best_cECE_iter_')]
    assert len(best) == 1

    logs = scalars(tmp_path)
    train = [r for r in logs if 'decode.loss_ece' in r]
    # ECE term off for iterations 0-1, on from iteration 2
    assert [r['decode.loss_ece'] == 0 for r in train] == [True, True,
                                                          False, False]
    val = [r for r in logs if 'cECE' in r]
    assert len(val) == 2 and all('mIoU' in r and 'ECE' in r for r in val)
    # the kept checkpoint is the one with the lowest cECE
    best_iter = int(best[0][len('best_cECE_iter_'):-4])
    assert min(val, key=lambda r: r['cECE'])['step'] == best_iter
    # stable link for the next stage's load_from, and the selection summary
    link = tmp_path / 'best_cECE.pth'
    assert link.is_symlink() and os.readlink(link) == best[0]
    summary = json.loads((tmp_path / 'selection.json').read_text())
    assert summary['selected']['iter'] == best_iter
    assert summary['last']['iter'] == 4
    assert summary['oracle']['mIoU'] == max(r['mIoU'] for r in val)
    assert summary['checkpoint'] == best[0]

    # resume (torch >= 2.6 weights_only default) to 6 iterations
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=6, interval=2)
    cfg.resume = True
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.iter == 6
    steps = [r['step'] for r in scalars(tmp_path) if 'decode.loss_ce' in r]
    # the resumed run trained iterations 5 and 6 only (two runs started in
    # the same second share a log file, hence no exact list)
    assert steps[-2:] == [5, 6] and len(steps) == len(set(steps))
    ckpt = torch.load(osp.join(tmp_path, 'iter_6.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 6
    # the selection history survived the resume
    summary = json.loads((tmp_path / 'selection.json').read_text())
    assert [r['iter'] for r in summary['history']] == [2, 4, 6]


def test_load_from_mmengine_checkpoint(synthetic_root, tmp_path):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'a', max_iters=2)
    runner = RUNNERS.build(cfg)
    runner.train()
    trained = runner.model.state_dict()

    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'b', max_iters=2)
    cfg.load_from = str(tmp_path / 'a' / 'iter_2.pth')
    runner = RUNNERS.build(cfg)
    runner.load_or_resume()
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value.cpu(), trained[key])


def test_warmup_hook_restores_weight(synthetic_root, tmp_path):
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=1)
    cfg.custom_hooks = [dict(type='ECELossWarmupHook', start_iter=5)]
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    runner = RUNNERS.build(cfg)
    runner.train()
    losses = [m for m in runner.model.modules()
              if isinstance(m, DiffECELoss)]
    assert losses and all(m.loss_weight == 0 for m in losses)


def test_resume_without_own_checkpoint_starts_from_load_from(
        synthetic_root, tmp_path):
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'a', max_iters=2)
    RUNNERS.build(cfg).train()
    trained = torch.load(str(tmp_path / 'a' / 'iter_2.pth'),
                         map_location='cpu')['state_dict']
    # a later stage names the previous one's output; --resume before it
    # wrote anything must start from load_from, not "resume" its optimizer
    cfg = tiny_source_cfg(synthetic_root, tmp_path / 'b', max_iters=2)
    cfg.load_from = str(tmp_path / 'a' / 'iter_2.pth')
    cfg.resume = True
    runner = RUNNERS.build(cfg)
    runner.load_or_resume()
    assert runner.iter == 0
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value.cpu(), trained[key])


def test_selection_records_numpy_float32_metrics(synthetic_root, tmp_path,
                                                 monkeypatch):
    """Under NumPy 2, MMSeg's mIoU is a np.float32 (not a float): it must
    still reach selection.json."""
    import numpy as np
    from mmseg.evaluation import IoUMetric
    compute = IoUMetric.compute_metrics
    monkeypatch.setattr(
        IoUMetric, 'compute_metrics', lambda self, results: {
            k: np.float32(v) for k, v in compute(self, results).items()})
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=2, interval=2)
    RUNNERS.build(cfg).train()
    summary = json.loads((tmp_path / 'selection.json').read_text())
    assert isinstance(summary['selected']['mIoU'], float)
    assert summary['oracle'] == summary['selected']


def test_save_best_none_keeps_the_last(synthetic_root, tmp_path):
    """The reference setting (no selection): no best checkpoint or link,
    and selection.json names the last evaluation."""
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=4, interval=2)
    cfg.default_hooks.checkpoint.save_best = None
    RUNNERS.build(cfg).train()
    files = set(p.name for p in tmp_path.iterdir())
    assert 'iter_4.pth' in files
    assert not [f for f in files if f.startswith('best_')]
    summary = json.loads((tmp_path / 'selection.json').read_text())
    assert summary['criterion']['key'] is None
    assert summary['selected']['iter'] == summary['last']['iter'] == 4
    assert [r['iter'] for r in summary['history']] == [2, 4]
