"""ECECheckpointHook's labelled report reaches the visualizer's backends."""
import json

from mmseg.registry import RUNNERS

from tests.utils import scalars, tiny_source_cfg


def test_report_numbers_reach_the_visualizer(synthetic_root, tmp_path):
    """The report/* numbers of each evaluation are in LocalVisBackend's
    scalars.json (as in TensorBoard's or W&B's), at the evaluation's step,
    equal to the message hub's; the selection does not change."""
    cfg = tiny_source_cfg(synthetic_root, tmp_path, max_iters=4, interval=2)
    cfg.default_hooks.checkpoint.update(
        report_dataloader=cfg.val_dataloader,
        report_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']))
    runner = RUNNERS.build(cfg)
    runner.train()
    reported = [r for r in scalars(tmp_path) if 'report/mIoU' in r]
    assert [r['step'] for r in reported] == [2, 4]
    hub = runner.message_hub.get_scalar('report/mIoU').data[0]
    assert [r['report/mIoU'] for r in reported] == [float(v) for v in hub]
    assert all('report/aAcc' in r for r in reported)
    val = [r for r in scalars(tmp_path) if 'cECE' in r]
    summary = json.loads((tmp_path / 'selection.json').read_text())
    assert summary['selected']['cECE'] == min(r['cECE'] for r in val)
    assert [r['iter'] for r in summary['history']] == [2, 4]
