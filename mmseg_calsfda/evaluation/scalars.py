"""Metric values as plain floats."""
import numbers
from typing import Dict

import torch


def scalar_metrics(metrics: dict) -> Dict[str, float]:
    """The numeric entries of a metrics dict as Python floats: Python and
    numpy numbers and one-element tensors (under NumPy 2, MMSeg's ``mIoU``
    is a ``np.float32``, which is not a ``float`` and which json cannot
    write); other entries are left out."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if (value.numel() == 1 if torch.is_tensor(value) else isinstance(
            value, numbers.Real))
    }
