import math
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ConfidenceMetric(BaseMetric):
    """Label-free confidence of the predictions, for model selection.

    Two simple alternatives to the value head's estimated ECE as a
    label-free checkpoint criterion: each image's mean normalised
    prediction entropy ``-sum_c p_c log p_c / log C`` (``entropy``, lower
    is more confident) and mean top-1 probability (``max_prob``, higher is
    more confident), averaged over images and reported in percent. Reads
    ``seg_logits``; needs no annotations.

    Args:
        collect_device (str): Device to gather per-image values on.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
        collect_dir (str, optional): Folder to gather them through when
            ``collect_device='cpu'`` (MMEngine's :class:`BaseMetric`).
            Defaults to None.
    """
    default_prefix: Optional[str] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Collects one (entropy, max probability) pair per image."""
        for sample in data_samples:
            logits = sample['seg_logits']['data'].float()
            log_p = logits.log_softmax(dim=0)
            p = log_p.exp()
            entropy = -(p * log_p).sum(dim=0) / math.log(logits.shape[0])
            row = torch.stack([entropy.mean(), p.amax(dim=0).mean()])
            self.results.append(row.cpu().numpy())

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Means over images, in percent."""
        values = np.asarray(results, dtype=np.float64).reshape(-1, 2)
        entropy, max_prob = values.mean(0) * 100
        return dict(entropy=round(float(entropy), 4),
                    max_prob=round(float(max_prob), 4))
