"""EstimatedECEMetric: the value head's estimates against the true ECE, and
label-free."""
import pytest
import torch

from mmseg_calsfda.calibration import classwise_ece
from mmseg_calsfda.evaluation import EstimatedECEMetric
from tests.utils import NUM_CLASSES


def test_estimated_ece_metric():
    metric = EstimatedECEMetric(with_labels=True)
    metric.dataset_meta = dict(classes=[str(i) for i in range(NUM_CLASSES)])
    g = torch.Generator().manual_seed(0)
    samples, truth = [], []
    for i in range(6):
        logits = torch.randn(NUM_CLASSES, 8, 8, generator=g) * (i + 1)
        label = torch.randint(0, NUM_CLASSES, (8, 8), generator=g)
        true = float(classwise_ece(logits[None], label[None], 10, 1e-5)[0])
        truth.append(true)
        samples.append(dict(est_ece=true * 0.5 + 0.01,
                            seg_logits=dict(data=logits),
                            gt_sem_seg=dict(data=label[None])))
    metric.process({}, samples)
    result = metric.evaluate(6)
    assert result['ece_spearman'] == pytest.approx(1.0)
    assert result['ece_pearson'] == pytest.approx(1.0)
    mean_est = sum(t * 0.5 + 0.01 for t in truth) / 6
    assert result['estECE'] == pytest.approx(mean_est * 100, abs=1e-3)
    assert result['trueECE'] == pytest.approx(sum(truth) / 6 * 100,
                                              abs=1e-3)
    label_free = EstimatedECEMetric()
    label_free.process({}, [dict(est_ece=0.2), dict(est_ece=0.4)])
    assert label_free.evaluate(2) == dict(estECE=pytest.approx(30.0))
    with pytest.raises(KeyError, match='value head'):
        label_free.process({}, [dict(seg_logits=None)])


def test_bad_class_average_names_the_choices():
    with pytest.raises(ValueError, match=r"EstimatedECEMetric: class_average "
                       r"must be one of \('all', 'present'\), got 'mean'"):
        EstimatedECEMetric(class_average='mean')
