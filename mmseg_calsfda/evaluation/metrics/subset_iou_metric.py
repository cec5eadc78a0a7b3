from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class SubsetIoUMetric(IoUMetric):
    """Mean IoU over a subset of the dataset's classes.

    E.g. the 13-class mIoU of SYNTHIA -> Cityscapes (the 16 classes without
    wall, fence and pole), reported beside the full :class:`IoUMetric`::

        dict(type='SubsetIoUMetric', classes=SYNTHIA_13_CLASSES,
             metric_name='mIoU13')

    Args:
        classes (Sequence[str]): Class names to average over; each must be a
            class of the dataset.
        metric_name (str): Name of the result. Defaults to 'mIoU_subset'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
        **kwargs: Arguments of :class:`IoUMetric` (``iou_metrics`` is
            fixed to mIoU).
    """

    def __init__(self,
                 classes: Sequence[str],
                 metric_name: str = 'mIoU_subset',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        kwargs.pop('iou_metrics', None)
        super().__init__(iou_metrics=['mIoU'], prefix=prefix, **kwargs)
        if not classes:
            raise ValueError('SubsetIoUMetric needs at least one class')
        self.classes = tuple(classes)
        self.metric_name = metric_name

    def compute_metrics(self, results: list) -> Dict[str, float]:
        names = list(self.dataset_meta['classes'])
        missing = [c for c in self.classes if c not in names]
        if missing:
            raise ValueError(f'SubsetIoUMetric: classes {missing} are not '
                             f'classes of the dataset ({names})')
        areas = [sum(column) for column in zip(*results)]
        iou = self.total_area_to_metrics(*areas, ['mIoU'], self.nan_to_num,
                                         self.beta)['IoU']
        subset = iou[[names.index(c) for c in self.classes]]
        value = float(np.round(np.nanmean(subset) * 100, 2))
        print_log(f'{self.metric_name} over {len(self.classes)} classes: '
                  f'{value}', logger='current')
        return {self.metric_name: value}
