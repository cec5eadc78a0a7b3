import json
import os
import os.path as osp
from typing import Dict, Optional, Union

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from ...evaluation.scalars import scalar_metrics
from ...fileio import write_json_atomic
from ...utils import named_dataloader


@HOOKS.register_module()
class ECECheckpointHook(CheckpointHook):
    """Keeps the checkpoint with the lowest ECE and reports it beside the
    oracle and the last evaluation.

    A :class:`CheckpointHook` whose ``save_best`` defaults to ``'cECE'`` with
    ``rule='less'`` (lower calibration error is better): on the labelled
    source, the evaluator's ``cECE``; on the target, the label-free
    ``estECE`` of an ``EstimatedECEMetric`` validation over a fixed subset of
    target images (with ``BNWarmupHook(before='val')``). In addition it

    * keeps a stable link ``best_<key>.pth`` to the current best checkpoint,
      so the next stage's ``load_from`` can name it before it exists;
    * records every evaluation and writes ``work_dir/selection.json``:
      the ECE-selected evaluation, the oracle (best ``report_key``, e.g.
      mIoU) and the last one. The record lives in the message hub and in
      ``selection.json``; on resume, evaluations up to the resumed iteration
      are kept (a checkpoint is written *before* the validation of its own
      iteration, so the message hub alone would miss that one);
    * optionally evaluates every validated model on a labelled set *for
      reporting only* (``report_dataloader``/``report_evaluator``, e.g.
      Cityscapes val with ``IoUMetric``): the numbers go into the record and
      the oracle, never into the selection.

    With ``save_best=None`` (the reference: no selection) no best checkpoint
    is kept and ``selection.json`` records the last evaluation as selected;
    the evaluations, the oracle and the report are recorded as usual.

    Args:
        save_best (str, optional): Metric to minimise/maximise, or None to
            keep only the regular (last) checkpoints. Defaults to 'cECE'.
        rule (str): 'less' or 'greater'. Defaults to 'less'.
        report_key (str): Metric reported beside it and used for the oracle.
            Defaults to 'mIoU'.
        report_dataloader (dict | str, optional): Labelled data for
            reporting, or the name of the config's top-level dataloader
            that holds it (``'report_dataloader'``).
        report_evaluator (dict | list, optional): Its metrics.
        **kwargs: Arguments of :class:`CheckpointHook`.
    """

    def __init__(self,
                 save_best: Optional[str] = 'cECE',
                 rule: str = 'less',
                 report_key: str = 'mIoU',
                 report_dataloader: Union[dict, str, None] = None,
                 report_evaluator: Union[dict, list, None] = None,
                 **kwargs) -> None:
        if save_best is not None and (not isinstance(save_best, str)
                                      or save_best == 'auto'):
            raise ValueError('ECECheckpointHook selects by one named metric '
                             f'or keeps the last (None), got save_best='
                             f'{save_best!r}')
        kwargs.setdefault('by_epoch', False)
        super().__init__(save_best=save_best, rule=rule, **kwargs)
        self.key = save_best
        self.key_rule = rule
        self.report_key = report_key
        if (report_dataloader is None) != (report_evaluator is None):
            raise ValueError('report_dataloader and report_evaluator go '
                             'together')
        self._report_loader = report_dataloader
        self._report_evaluator = report_evaluator

    def _resolve_name(self, runner) -> None:
        if isinstance(self._report_loader, str):
            self._report_loader = named_dataloader(
                runner.cfg, self._report_loader,
                'ECECheckpointHook: report_dataloader')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._resolve_name(runner)  # a wrong name fails before training
        path = osp.join(runner.work_dir, 'selection.json')
        if runner.iter == 0 or not osp.isfile(path):
            return
        with open(path) as f:
            saved = json.load(f).get('history', [])
        rows = {r['iter']: r for r in saved if r['iter'] <= runner.iter}
        rows.update((r['iter'], r) for r in runner.message_hub.get_info(
            self._history_key, []))
        runner.message_hub.update_info(self._history_key,
                                       [rows[i] for i in sorted(rows)])

    def after_val_epoch(self, runner, metrics: Dict[str, float]) -> None:
        super().after_val_epoch(runner, metrics)
        if self.key is not None and self.key not in metrics:
            return
        record = self._report(runner) if self._report_loader else {}
        record.update(metrics)
        history = list(runner.message_hub.get_info(self._history_key, []))
        history.append(
            dict(iter=runner.iter, epoch=runner.epoch,
                 **scalar_metrics(record)))
        runner.message_hub.update_info(self._history_key, history)
        if is_main_process():
            self._link_best()
            self._write_summary(runner, history)

    def _report(self, runner) -> Dict[str, float]:
        """Evaluates the current model on the labelled reporting set."""
        self._resolve_name(runner)
        if isinstance(self._report_loader, dict):
            self._report_loader = runner.build_dataloader(
                self._report_loader, seed=runner.seed)
            self._report_evaluator = runner.build_evaluator(
                self._report_evaluator)
            self._report_evaluator.dataset_meta = \
                self._report_loader.dataset.metainfo
        runner.model.eval()
        with torch.no_grad():
            for batch in self._report_loader:
                outputs = runner.model.val_step(batch)
                self._report_evaluator.process(outputs, batch)
        metrics = self._report_evaluator.evaluate(
            len(self._report_loader.dataset))
        for key, value in metrics.items():
            runner.message_hub.update_scalar(f'report/{key}', value)
        runner.logger.info(f'report (labels used for reporting only): '
                           f'{metrics}')
        return dict(metrics)

    @property
    def _history_key(self) -> str:
        return f'ece_selection_history_{self.key or "last"}'

    def _link_best(self) -> None:
        best = getattr(self, 'best_ckpt_path', None)
        if self.key is None or not best or not osp.isfile(best):
            return
        link = osp.join(self.out_dir, f'best_{self.key}.pth'.replace('/', '_'))
        tmp = link + '.tmp'
        if osp.lexists(tmp):
            os.remove(tmp)
        os.symlink(osp.basename(best), tmp)
        os.replace(tmp, link)

    def _write_summary(self, runner, history: list) -> None:
        oracle, last = self._oracle(history), history[-1]
        if self.key is None:
            selected = last
        else:
            sign = 1 if self.key_rule == 'less' else -1
            selected = min(history, key=lambda r: sign * r[self.key])
        summary = dict(
            criterion=dict(key=self.key, rule=self.key_rule),
            selected=selected,
            oracle=oracle,
            last=last,
            checkpoint=osp.basename(
                getattr(self, 'best_ckpt_path', None) or ''),
            history=history)
        write_json_atomic(summary, osp.join(runner.work_dir,
                                            'selection.json'))

        def report(row: Optional[dict]) -> str:
            value = (row or {}).get(self.report_key)
            return 'n/a' if value is None else f'{value:.2f}'

        criterion = ('last checkpoint' if self.key is None else
                     f'{self.key}={selected[self.key]:.4f}')
        runner.logger.info(
            f'ECE selection: {criterion} at iter '
            f'{selected["iter"]}, {self.report_key} {report(selected)} '
            f'(oracle {report(oracle)}, last {report(last)})')

    def _oracle(self, history: list) -> Optional[dict]:
        rows = [r for r in history if self.report_key in r]
        return max(rows, key=lambda r: r[self.report_key]) if rows else None
