"""ConfidenceMetric: label-free entropy and max-probability criteria."""
import math

import pytest
import torch
from mmseg.registry import METRICS


def _samples(logits):
    return [dict(seg_logits=dict(data=x)) for x in logits]


def test_against_a_pixel_loop():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4, 6) * 2
    metric = METRICS.build(dict(type='ConfidenceMetric'))
    metric.process({}, _samples(logits))
    result = metric.compute_metrics(metric.results)
    entropies, max_probs = [], []
    for image in logits:  # per image: mean over pixels, then over images
        ent, top = 0.0, 0.0
        for y in range(4):
            for x in range(6):
                p = [math.exp(v) for v in image[:, y, x].tolist()]
                total = sum(p)
                p = [v / total for v in p]
                ent += -sum(v * math.log(v) for v in p) / math.log(5)
                top += max(p)
        entropies.append(ent / 24)
        max_probs.append(top / 24)
    assert result['entropy'] == pytest.approx(
        100 * sum(entropies) / 3, abs=1e-3)
    assert result['max_prob'] == pytest.approx(
        100 * sum(max_probs) / 3, abs=1e-3)


def test_extremes():
    metric = METRICS.build(dict(type='ConfidenceMetric'))
    metric.process({}, _samples(torch.zeros(2, 4, 3, 3)))  # uniform
    assert metric.compute_metrics(metric.results) == dict(
        entropy=100.0, max_prob=25.0)
    sure = torch.zeros(1, 4, 3, 3)
    sure[:, 2] = 100.0
    metric.results = []
    metric.process({}, _samples(sure))
    result = metric.compute_metrics(metric.results)
    assert result['entropy'] < 1e-3 and result['max_prob'] == 100.0
