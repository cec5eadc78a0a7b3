from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmseg.registry import METRICS
from scipy import stats

from ...calibration import CLASS_AVERAGES, check_n_bins, classwise_ece
from ...utils import check_choice


@METRICS.register_module()
class EstimatedECEMetric(BaseMetric):
    """Label-free calibration: the mean of the value head's ECE estimates.

    Reads ``est_ece`` from each data sample (put there by
    :class:`CalSFDASegmentor` with a value head) and reports ``estECE`` in
    percent. It needs no annotations, so the dataloader's pipeline may skip
    ``LoadAnnotations``.

    With ``with_labels=True`` and ``gt_sem_seg`` present it also computes each
    image's true class-level ECE (same definition as the value head's
    training target) and reports ``trueECE`` (percent), ``ece_mse``, and the
    ``ece_pearson``/``ece_spearman`` correlations between estimate and truth
    -- how good the estimator is (stage 2 validation).

    Args:
        with_labels (bool): Compare with the true ECE. Defaults to False.
        n_bins (int): Bins of the true ECE. Defaults to 10.
        temperature (float, optional): LogSumExp temperature of the true
            ECE's confidence. Defaults to 1e-5.
        class_average (str): ``'all'`` or ``'present'``.
        ignore_index (int): Label value to ignore. Defaults to 255.
        collect_device (str): Device to gather per-image values on.
        prefix (str, optional): Prefix of the metric names.
    """
    default_prefix: Optional[str] = None

    def __init__(self,
                 with_labels: bool = False,
                 n_bins: int = 10,
                 temperature: Optional[float] = 1e-5,
                 class_average: str = 'all',
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_choice('class_average', class_average, CLASS_AVERAGES,
                     'EstimatedECEMetric')
        self.with_labels = with_labels
        self.n_bins = check_n_bins(n_bins)
        self.temperature = temperature
        self.class_average = class_average
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Collects one estimate (and true ECE) per image."""
        for sample in data_samples:
            if 'est_ece' not in sample:
                raise KeyError(
                    'EstimatedECEMetric: data sample has no "est_ece"; the '
                    'model needs a value head (CalSFDASegmentor with '
                    'value_head=..., trained by a stage-2 "value" config)')
            row = [float(sample['est_ece'])]
            if self.with_labels:
                row.append(self._true_ece(sample))
            self.results.append(row)

    def _true_ece(self, sample: dict) -> float:
        if 'gt_sem_seg' not in sample:
            raise KeyError('EstimatedECEMetric(with_labels=True) needs '
                           'gt_sem_seg: add LoadAnnotations to the pipeline')
        logits = sample['seg_logits']['data'][None]
        label = sample['gt_sem_seg']['data'].to(logits.device)
        return float(classwise_ece(logits, label, self.n_bins,
                                   self.temperature, self.ignore_index,
                                   self.class_average)[0])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Mean estimate and, with labels, agreement with the truth."""
        values = np.asarray(results, dtype=np.float64)
        metrics = dict(estECE=round(float(values[:, 0].mean()) * 100, 4))
        if self.with_labels and len(values) > 0:
            est, true = values[:, 0], values[:, 1]
            metrics.update(
                trueECE=round(float(true.mean()) * 100, 4),
                ece_mse=float(((est - true)**2).mean()),
                ece_pearson=self._corr(stats.pearsonr, est, true),
                ece_spearman=self._corr(stats.spearmanr, est, true))
        MMLogger.get_current_instance().info(
            f'ECE estimation over {len(values)} images: {metrics}')
        return metrics

    @staticmethod
    def _corr(fn, est: np.ndarray, true: np.ndarray) -> float:
        if len(est) < 2 or est.std() == 0 or true.std() == 0:
            return float('nan')
        return round(float(fn(est, true)[0]), 4)
