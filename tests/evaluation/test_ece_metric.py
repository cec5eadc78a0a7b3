"""ECEMetric: torchmetrics parity, loop reference, split invariance, ranks."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmseg.registry import METRICS
from torchmetrics.functional.classification import multiclass_calibration_error

from mmseg_calsfda.evaluation import ECEMetric
from mmseg_calsfda.testing.reference import loop_dataset_classwise_ece

C = 6


def make_data(seed=0, n=6, h=12, w=15):
    g = torch.Generator().manual_seed(seed)
    logits = [torch.randn(C, h, w, generator=g) * 3 for _ in range(n)]
    labels = [torch.randint(0, C, (h, w), generator=g) for _ in range(n)]
    for i, label in enumerate(labels):
        label[label == 4] = 0  # class 4 absent everywhere
        label[torch.rand(h, w, generator=g) < 0.15] = 255
    logits[0][2, :3] += 50  # saturated: confidence exactly 1.0
    return logits, labels


def samples(logits, labels):
    return [
        dict(seg_logits=dict(data=lg), gt_sem_seg=dict(data=lb[None]))
        for lg, lb in zip(logits, labels)
    ]


def run_metric(logits, labels, batch_size=2, **kwargs):
    metric = ECEMetric(**kwargs)
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(C)])
    data = samples(logits, labels)
    for i in range(0, len(data), batch_size):
        metric.process({}, data[i:i + batch_size])
    return metric.evaluate(len(data))


def test_ece_matches_torchmetrics_and_cece_matches_loop():
    logits, labels = make_data()
    result = run_metric(logits, labels)
    probs = torch.stack([torch.softmax(lg, 0) for lg in logits])
    ref = multiclass_calibration_error(
        probs, torch.stack(labels), num_classes=C, n_bins=10, norm='l1',
        ignore_index=255)
    assert result['ECE'] / 100 == pytest.approx(float(ref), abs=1e-4)
    cece = loop_dataset_classwise_ece(logits, labels, 10)
    assert result['cECE'] / 100 == pytest.approx(float(cece), abs=1e-4)


@pytest.mark.parametrize('batch_size', [1, 4, 6])
def test_split_into_batches_gives_same_result(batch_size):
    logits, labels = make_data(1)
    assert run_metric(logits, labels, batch_size) == run_metric(
        logits, labels, 3)


def test_state_is_fixed_size():
    logits, labels = make_data(2, n=2, h=40, w=40)
    metric = ECEMetric(n_bins=15)
    metric.dataset_meta = dict(classes=[str(i) for i in range(C)])
    metric.process({}, samples(logits, labels))
    metric.process({}, samples(logits, labels))
    assert metric.results == []
    assert metric._top.stack().shape == (3, 1, 16)
    assert metric._cls.stack().shape == (3, C, 15)


def test_reliability_diagram_and_prefix(tmp_path):
    logits, labels = make_data(3)
    out = tmp_path / 'diag'
    result = run_metric(logits, labels, output_dir=str(out), prefix='src')
    assert set(result) == {'src/ECE', 'src/cECE'}
    png = out / 'reliability_diagram.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_bad_input():
    with pytest.raises(ValueError, match='n_bins'):
        ECEMetric(n_bins=0)
    logits, labels = make_data(4, n=1)
    labels[0][0, 0] = 17
    with pytest.raises(ValueError, match=r'\[17\]'):
        run_metric(logits, labels)
    with pytest.raises(ValueError, match='differ in size'):
        run_metric(logits, [labels[0][:5]])


def test_registered():
    assert isinstance(METRICS.build(dict(type='ECEMetric')), ECEMetric)


def _worker(rank, world_size, port, out_file):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world_size)
    logits, labels = make_data(5, n=5)
    # uneven split: rank 0 gets 3 images, rank 1 gets 2
    part = slice(0, 3) if rank == 0 else slice(3, 5)
    result = run_metric(logits[part], labels[part])
    if rank == 0:
        torch.save(result, out_file)
    dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path, free_port):
    out_file = str(tmp_path / 'result.pt')
    mp.spawn(_worker, args=(2, free_port, out_file), nprocs=2)
    logits, labels = make_data(5, n=5)
    assert torch.load(out_file) == run_metric(logits, labels)


def test_scalar_metrics_keeps_numbers_of_every_kind():
    import numpy as np

    from mmseg_calsfda.evaluation import scalar_metrics
    out = scalar_metrics(dict(a=np.float32(1.5), b=2, c=torch.tensor(0.25),
                              d='text', e=torch.ones(3), f=[1.0]))
    assert out == dict(a=1.5, b=2.0, c=0.25)
    assert all(type(v) is float for v in out.values())
