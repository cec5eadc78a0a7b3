"""CUDA-only behaviour: AMP through every stage, ECE math under autocast,
the device-side label check. Skipped where no GPU is available (CI); run
on a GPU machine with ``pytest tests/integration/test_cuda.py``."""
import json
import sys

import pytest
import torch

from mmseg_calsfda.calibration import bin_stats, ece_from_stats
from mmseg_calsfda.evaluation import ECEMetric
from mmseg_calsfda.models.losses import DiffECELoss
from mmseg_calsfda.pseudo_label import CalibratedPseudoLabeler
from mmseg_calsfda.pseudo_label.calibrated_pseudo_labeler import count_values
from tests.utils import run_cli, scalars, tiny_cfg, tiny_source_cfg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU')


def train_cli(config, *extra):
    return run_cli([sys.executable, 'tools/train.py', config, *extra],
                   timeout=600, PYTHONWARNINGS='ignore')


def last_scalars(work_dir):
    """The train-time scalars (rows with a loss) of the latest run."""
    return [r for r in scalars(work_dir) if any(k.startswith('loss')
                                                 for k in r)]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_loss_under_autocast_is_float32(dtype):
    g = torch.Generator(device='cuda').manual_seed(0)
    conv = torch.nn.Conv2d(16, 19, 1).cuda()
    feats = torch.randn(2, 16, 33, 47, device='cuda', generator=g) * 3
    label = torch.randint(0, 19, (2, 33, 47), device='cuda', generator=g)
    label[:, :3] = 255
    loss = DiffECELoss()
    with torch.autocast('cuda', dtype=dtype):
        logits = conv(feats)
        assert logits.dtype == dtype
        amp = loss(logits, label)
    assert amp.dtype == torch.float32
    # identical float32 math on the same (rounded) logits
    assert float(amp) == pytest.approx(float(loss(logits.float(), label)),
                                       abs=1e-6)
    # and close to the fp32 forward pass
    assert float(amp) == pytest.approx(float(loss(conv(feats), label)),
                                       abs=2e-2)


def test_bin_stats_same_on_cuda_and_cpu():
    g = torch.Generator().manual_seed(1)
    conf = torch.rand(3, 5000, generator=g)
    correct = torch.rand(3, 5000, generator=g) > 0.4
    cpu = ece_from_stats(bin_stats(conf, correct, 15))
    gpu = ece_from_stats(bin_stats(conf.cuda(), correct.cuda(), 15))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


def test_ece_metric_fp16_logits_match_fp32():
    g = torch.Generator(device='cuda').manual_seed(2)
    logits = torch.randn(19, 64, 96, device='cuda', generator=g) * 2
    label = torch.randint(0, 19, (1, 64, 96), device='cuda', generator=g)
    values = []
    for data in (logits, logits.half()):
        metric = ECEMetric()
        metric.dataset_meta = dict(classes=list(range(19)))
        metric.process({}, [dict(seg_logits=dict(data=data),
                                 gt_sem_seg=dict(data=label))])
        values.append(metric.evaluate(1))
    for key in ('ECE', 'cECE'):
        assert values[1][key] == pytest.approx(values[0][key], abs=0.05)


def test_pseudo_labels_per_image_never_wait_for_the_gpu():
    """The per-image work of a pseudo-label pass (both halves and the
    refinement look) queues on the GPU without a host sync (bincount,
    .item(), blocking copies would raise here), and gives the CPU's
    thresholds and labels."""
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(2, 19, 64, 96, generator=g) * 3, 1)
    est = torch.tensor([0.1, 0.3])
    results = {}
    for device in ('cpu', 'cuda'):
        labeler = CalibratedPseudoLabeler(num_classes=19)
        inputs = probs.to(device)
        torch.cuda.synchronize()
        with sync_debug_errors():
            top1 = labeler.top1(inputs)
            labeler.update(top1, est)
        labeler.begin_refinement(1)
        with sync_debug_errors():
            labeler.refine(top1, est)
        tau = labeler.thresholds(1)  # once per pass: may sync
        tau_device = tau.to(device)
        torch.cuda.synchronize()
        with sync_debug_errors():
            label = labeler.label(top1, est, tau_device, 1)
            counts = count_values(top1.pred, 20)
        results[device] = (label.cpu(), counts.cpu(), tau)
    for cpu, gpu in zip(results['cpu'], results['cuda']):
        torch.testing.assert_close(gpu, cpu)


class sync_debug_errors:
    """Within the block, an operation that waits for the GPU raises."""

    def __enter__(self):
        torch.cuda.set_sync_debug_mode('error')

    def __exit__(self, *_):
        torch.cuda.set_sync_debug_mode('default')


def test_bad_label_is_caught_on_the_first_cuda_call():
    loss = DiffECELoss()
    logits = torch.randn(1, 4, 5, 5, device='cuda')
    label = torch.full((1, 5, 5), 7, device='cuda')
    with pytest.raises(ValueError, match='7'):
        loss(logits, label)


def test_amp_through_every_stage(synthetic_root, tmp_path):
    """tools/train.py --amp: source -> value -> target, chained by
    load_from as a user runs them."""
    src = tmp_path / 'src'
    cfg = tiny_source_cfg(synthetic_root, src, max_iters=2)
    cfg.dump(str(tmp_path / 'src.py'))
    res = train_cli(str(tmp_path / 'src.py'), '--amp')
    assert res.returncode == 0, res.stderr[-3000:]
    assert (src / 'best_cECE.pth').exists()
    ckpt = torch.load(src / 'iter_2.pth', map_location='cpu',
                      weights_only=False)
    assert 'loss_scaler' in ckpt['optimizer']

    value = tmp_path / 'value'
    cfg = tiny_cfg('deeplabv2_r101_gta5_value.py', synthetic_root, value,
                   max_iters=2, interval=2, lr=1e-3)
    cfg.load_from = str(src / 'best_cECE.pth')
    cfg.dump(str(tmp_path / 'value.py'))
    res = train_cli(str(tmp_path / 'value.py'), '--amp')
    assert res.returncode == 0, res.stderr[-3000:]

    target = tmp_path / 'target'
    cfg = tiny_cfg('deeplabv2_gta2cs.py', synthetic_root, target,
                   max_epochs=2, lr=1e-3)
    cfg.load_from = str(value / 'iter_2.pth')
    cfg.custom_hooks[0].epochs_per_round = 1
    cfg.custom_hooks[0].bn_warmup_batches = 2
    cfg.custom_hooks[1].num_batches = 2
    cfg.dump(str(tmp_path / 'target.py'))
    res = train_cli(str(tmp_path / 'target.py'), '--amp')
    assert res.returncode == 0, res.stderr[-3000:]
    assert (target / 'pseudo_labels' / 'round_1' / 'summary.json').exists()
    assert (target / 'best_estECE.pth').exists()
    for work in (src, value, target):
        rows = last_scalars(work)
        assert rows, f'{work}: no loss logged'
        losses = [v for k, v in rows[-1].items() if k.startswith('loss')]
        assert all(v == v and abs(v) < 1e4 for v in losses), rows[-1]


def test_demo_tiny_on_cuda(tmp_path):
    res = run_cli(
        [sys.executable, 'tools/demo.py', '--tiny', '--device', 'cuda',
         '--work-dir', str(tmp_path)], timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    results = json.loads((tmp_path / 'results.json').read_text())
    assert 0 <= results['adapted']['target_mIoU'] <= 100


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('temperature', [1e-5, None])
def test_fused_kernels_match_pytorch_ops_on_cuda(dtype, temperature):
    """The Triton kernels against the PyTorch ops, at a training size."""
    from mmseg_calsfda import fused_bin_stats
    from mmseg_calsfda.calibration import classwise_ece
    assert fused_bin_stats.available(torch.zeros(1, device='cuda'))
    g = torch.Generator(device='cuda').manual_seed(0)
    logits = (torch.randn(2, 19, 257, 131, device='cuda', generator=g) *
              3).to(dtype)
    label = torch.randint(0, 19, (2, 257, 131), device='cuda', generator=g)
    label[:, :7] = 255
    values, grads = [], []
    for fused in (True, False):
        x = logits.clone().requires_grad_()
        ece = classwise_ece(x, label, 10, temperature, fused=fused)
        (ece * torch.tensor([1., 2.], device='cuda')).sum().backward()
        values.append(ece.detach())
        grads.append(x.grad.float())
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=1e-6)
    scale = float(grads[1].abs().max())
    assert scale > 0
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-4
    close = torch.isclose(grads[0], grads[1], rtol=tol, atol=tol * scale)
    # a pixel whose confidence is within float rounding of a bin edge can
    # fall into the next bin on one path (Triton's and PyTorch's exp and
    # division differ in the last bit): 2 of 1.3M pixels on an H200
    assert (~close).sum() <= 1e-5 * close.numel()
