import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.utils import mkdir_or_exist
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import Tensor

from ...calibration import (
    CalibrationStats,
    bin_stats,
    check_labels,
    check_n_bins,
    ece_from_stats,
    mean_over_classes,
    num_bin_slots,
)
from ...visualization import plot_reliability_diagram


@METRICS.register_module()
class ECEMetric(BaseMetric):
    """Streaming expected calibration error of a segmentation model.

    Reads ``seg_logits`` (raw logits, C x H x W) and ``gt_sem_seg`` of every
    data sample and accumulates fixed-size per-bin statistics -- O(C x n_bins)
    whatever the number of pixels -- that are summed across ranks. Reports,
    in percent like :class:`IoUMetric`:

    * ``ECE``: top-label ECE over all valid pixels, binned exactly like
      torchmetrics' ``MulticlassCalibrationError(norm='l1')`` (bins
      ``[lo, hi)``, confidence 1.0 in a bin of its own);
    * ``cECE``: class-level ECE over the whole dataset -- for every
      ground-truth class the ECE of its pixels (bins ``(lo, hi]`` as in
      docs/method.md), averaged over the classes present.

    Per-class ECE, accuracy and confidence are logged as a table. Lower is
    better: ``CheckpointHook(save_best='cECE', rule='less')``.

    Args:
        n_bins (int): Number of confidence bins. Defaults to 10.
        ignore_index (int): Label value to ignore. Defaults to 255.
        output_dir (str, optional): If set, a reliability diagram is saved
            there as ``reliability_diagram.png`` (by the main process).
        collect_device (str): Kept for interface compatibility; statistics
            are all-reduced on the communication device. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names.
    """
    default_prefix: Optional[str] = None

    def __init__(self,
                 n_bins: int = 10,
                 ignore_index: int = 255,
                 output_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.n_bins = check_n_bins(n_bins)
        self.ignore_index = ignore_index
        self.output_dir = output_dir
        if output_dir and is_main_process():
            mkdir_or_exist(output_dir)
        self._top: Optional[CalibrationStats] = None
        self._cls: Optional[CalibrationStats] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Adds the bin statistics of a batch of predictions.

        Args:
            data_batch (dict): A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs with ``seg_logits``
                and ``gt_sem_seg``.
        """
        for data_sample in data_samples:
            logits = data_sample['seg_logits']['data']
            label = data_sample['gt_sem_seg']['data'].squeeze(0)
            self._add(*self.image_stats(logits, label.to(logits.device)))

    def image_stats(self, logits: Tensor, label: Tensor) -> tuple:
        """Top-label and per-class statistics of one image.

        Args:
            logits (Tensor): ``C x H x W`` logits.
            label (Tensor): ``H x W`` ground truth.

        Returns:
            tuple[CalibrationStats, CalibrationStats]: Top-label stats of
            shape ``(1, n_bins + 1)`` and per-class stats ``(C, n_bins)``.
        """
        num_classes = logits.shape[0]
        if logits.shape[1:] != label.shape:
            raise ValueError(
                f'seg_logits {tuple(logits.shape)} and gt_sem_seg '
                f'{tuple(label.shape)} differ in size')
        check_labels(label, num_classes, self.ignore_index)
        conf, pred = F.softmax(logits, dim=0, dtype=torch.float32).max(dim=0)
        valid = label != self.ignore_index
        target = torch.where(valid, label.long(), 0)
        correct = pred == target
        top = bin_stats(
            conf, correct, self.n_bins, weight=valid, closed='left')
        per_class = bin_stats(
            conf,
            correct,
            self.n_bins,
            group=target,
            num_groups=num_classes,
            weight=valid)
        return top, per_class

    def _add(self, top: CalibrationStats, per_class: CalibrationStats):
        if self._top is None:
            self._top, self._cls = top, per_class
        else:
            self._top, self._cls = self._top + top, self._cls + per_class

    def _reduced_stats(self) -> tuple:
        """Sums the statistics of all ranks; zeros where a rank saw none."""
        if self._top is None:
            num_classes = len(self.dataset_meta['classes'])
            top = torch.zeros(3, 1, num_bin_slots(self.n_bins, 'left'))
            per_class = torch.zeros(3, num_classes, self.n_bins)
        else:
            top, per_class = self._top.stack(), self._cls.stack()
        top, per_class = top.double(), per_class.double()
        all_reduce(top)  # in place; a no-op without distributed training
        all_reduce(per_class)
        return (CalibrationStats(*top.cpu()),
                CalibrationStats(*per_class.cpu()))

    def evaluate(self, size: int) -> Dict[str, float]:
        """Reduces the statistics over ranks and computes the metrics.

        Args:
            size (int): Length of the dataset (unused: the statistics do not
                depend on how samples were split across ranks).

        Returns:
            dict[str, float]: ``ECE`` and ``cECE`` in percent.
        """
        top, per_class = self._reduced_stats()
        self._top = self._cls = None
        metrics = self.compute_metrics([top, per_class])
        if self.prefix:
            metrics = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        return metrics

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Computes ECE and cECE from reduced statistics.

        Args:
            results (list): ``[top_label_stats, per_class_stats]``.

        Returns:
            dict[str, float]: ``ECE`` and ``cECE`` in percent.
        """
        top, per_class = results
        class_ece = ece_from_stats(per_class)
        class_count = per_class.count.sum(-1)
        metrics = dict(
            ECE=round(float(ece_from_stats(top)[0]) * 100, 4),
            cECE=round(
                float(mean_over_classes(class_ece, class_count, 'present')) *
                100, 4))
        self._log_class_table(per_class, class_ece)
        if self.output_dir and is_main_process():
            plot_reliability_diagram(
                top.count[0], top.conf_sum[0], top.acc_sum[0],
                osp.join(self.output_dir, 'reliability_diagram.png'),
                title=(f'ECE {metrics["ECE"]:.2f}%  '
                       f'cECE {metrics["cECE"]:.2f}%'),
                merge_last=True)
        return metrics

    def _log_class_table(self, per_class: CalibrationStats,
                         class_ece: Tensor) -> None:
        logger = MMLogger.get_current_instance()
        count = per_class.count.sum(-1)
        safe = count.clamp(min=1)
        classes = (self.dataset_meta or {}).get(
            'classes', [str(i) for i in range(len(count))])
        table = PrettyTable()
        table.add_column('Class', list(classes))
        table.add_column('ECE', np.round(class_ece.numpy() * 100, 2))
        table.add_column('Acc', np.round(
            (per_class.acc_sum.sum(-1) / safe).numpy() * 100, 2))
        table.add_column('Conf', np.round(
            (per_class.conf_sum.sum(-1) / safe).numpy() * 100, 2))
        table.add_column('Pixels', count.long().tolist())
        print_log('per class calibration:\n' + table.get_string(), logger)
