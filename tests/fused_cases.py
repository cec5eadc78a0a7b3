"""Runs ``classwise_ece`` through the fused Triton kernels and through the
PyTorch ops on the same inputs and saves values and logit gradients.

    TRITON_INTERPRET=1 python tests/fused_cases.py OUT.pt

Triton's CPU interpreter must be switched on before Triton is first
imported, hence a process of its own (see ``tests/test_fused_bin_stats.py``).
"""
import sys

import torch

from mmseg_calsfda import fused_bin_stats
from mmseg_calsfda.calibration import classwise_ece

# name: (temperature, classes, bins, weighted, class_average, dtype)
CASES = {
    'smooth_max_19_classes': (1e-5, 19, 10, False, 'all', torch.float32),
    'plain_max_weighted': (None, 19, 10, True, 'present', torch.float32),
    'soft_temperature_15_bins': (0.05, 6, 15, False, 'all', torch.float32),
    'three_classes_weighted': (1e-5, 3, 4, True, 'all', torch.float32),
    'bf16_logits': (1e-5, 19, 10, False, 'all', torch.bfloat16),
    'two_classes_ties_on_a_bin_edge': (None, 2, 10, False, 'all',
                                       torch.float32),
}


def inputs(classes: int, dtype: torch.dtype, weighted: bool):
    """3 images of 13 x 37 pixels (the last tile of each is partial), some
    ignored and some out-of-range labels."""
    g = torch.Generator().manual_seed(classes)
    logits = (torch.randn(3, classes, 13, 37, generator=g) * 3).to(dtype)
    label = torch.randint(0, classes, (3, 13, 37), generator=g)
    label[:, :2] = 255
    label[0, 4, :5] = classes + 2
    logits[1, :, 6] = 0
    weight = torch.rand(3, 13, 37, generator=g) if weighted else None
    return logits, label, weight


def run_case(temperature, classes, n_bins, weighted, average, dtype):
    logits, label, weight = inputs(classes, dtype, weighted)
    result = {}
    for fused in (True, False):
        x = logits.clone().requires_grad_()
        ece = classwise_ece(x, label, n_bins, temperature, 255, average,
                            weight, fused=fused)
        # unequal image weights: a wrong image offset shows up
        (ece * torch.arange(1., len(ece) + 1)).sum().backward()
        key = 'fused' if fused else 'plain'
        result[key] = (ece.detach(), x.grad)
    return result


def main():
    assert fused_bin_stats.available(torch.zeros(1)), 'TRITON_INTERPRET=1?'
    torch.save({name: run_case(*case) for name, case in CASES.items()},
               sys.argv[1])


if __name__ == '__main__':
    main()
