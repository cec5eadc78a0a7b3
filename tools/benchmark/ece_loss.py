"""Benchmarks the differentiable ECE: the loss alone and a training step.

    python tools/benchmark/ece_loss.py --device cuda --out benchmarks/x.json

Reports ratios measured in one run (medians after warm-up, with CUDA
synchronisation):

* ``loss_vs_loop``: slow loop implementation of the same definition (one
  image, class and bin at a time) / ``DiffECELoss`` (forward + backward);
* ``loss_vs_torchmetrics``: torchmetrics' top-label
  ``multiclass_calibration_error`` / ``DiffECELoss`` forward (different
  quantity, same data: how a standard calibration metric compares);
* ``loss_vs_ce`` / ``loss_vs_ce_bf16``: ``DiffECELoss`` / cross-entropy,
  forward + backward on the same float32 logits / bfloat16 logits under
  bf16 autocast, timed in turn (what the loss adds to a step, apart from
  the network); ``loss_unfused_vs_ce``: the same with ``fused=False``
  (PyTorch ops instead of the Triton kernels on a GPU);
* ``diffece_step_overhead``: a DeepLabV2-R101 training step with CE + DiffECE
  / the same step with CE only, on the same batch.
"""
import argparse
from typing import Optional

import torch
import torch.nn.functional as F

from report import (  # this script's folder is importable
    allocated_mib,
    environment,
    interleaved,
    peak_memory_mib,
    reset_peak_memory,
    stage_config,
    timed,
    write_profile,
    write_result,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=600,
                        help='square crop size of the training step')
    parser.add_argument('--loss-size', type=int, default=None,
                        help='spatial size for the loss-alone benchmarks '
                        '(default: --size)')
    parser.add_argument('--depth', type=int, default=101,
                        help='ResNet depth (DeepLabV2)')
    parser.add_argument('--network', choices=sorted(STEP_CONFIGS),
                        default='deeplabv2',
                        help='the network of the step benchmark')
    parser.add_argument('--reps', type=int, default=10)
    parser.add_argument('--loop-reps', type=int, default=2)
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast for the training step')
    parser.add_argument('--out', help='JSON file to write')
    return parser.parse_args()


def bench_loss(args, size: int, profile: Optional[str] = None) -> dict:
    """Times the loss alone; with ``profile``, also writes a profile of
    five DiffECE forward + backward passes on bf16 logits under autocast
    there."""
    from torchmetrics.functional.classification import (
        multiclass_calibration_error,
    )

    from mmseg_calsfda.models.losses import DiffECELoss
    from mmseg_calsfda.testing.reference import loop_classwise_ece

    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(args.batch, 19, size, size, generator=g) * 3)
    label = torch.randint(0, 19, (args.batch, size, size), generator=g)
    logits, label = logits.to(args.device), label.to(args.device)
    loss = DiffECELoss()

    def fwd_bwd(fn, dtype=torch.float32):
        """``fn``'s forward + backward on a copy of the logits; bf16 logits
        under bf16 autocast, as in an AMP step."""
        autocast = torch.autocast(args.device.split(':')[0],
                                  dtype=torch.bfloat16,
                                  enabled=dtype == torch.bfloat16)

        def run():
            x = logits.to(dtype, copy=True).requires_grad_()
            with autocast:
                value = fn(x, label)
            value.backward()
        return run

    def cross_entropy(x, y):
        return F.cross_entropy(x, y, ignore_index=255)

    def loop_reference(x, y):
        return loop_classwise_ece(x, y, 10, 1e-5).mean()

    def torchmetrics():
        multiclass_calibration_error(logits, label, num_classes=19,
                                     n_bins=10, norm='l1', ignore_index=255)

    def ours_forward():
        with torch.no_grad():
            loss(logits, label)

    result = dict(shape=[args.batch, 19, size, size])
    unfused = DiffECELoss(fused=False)
    for dtype, suffix in ((torch.float32, ''), (torch.bfloat16, '_bf16')):
        times = interleaved(dict(ce=fwd_bwd(cross_entropy, dtype),
                                 diffece=fwd_bwd(loss, dtype),
                                 unfused=fwd_bwd(unfused, dtype)),
                            args.device, args.reps, warmup=2)
        result.update({
            f'ce{suffix}_fwd_bwd_s': times['ce'],
            f'diffece{suffix}_fwd_bwd_s': times['diffece'],
            f'diffece_unfused{suffix}_fwd_bwd_s': times['unfused'],
            f'loss_vs_ce{suffix}': times['diffece'] / times['ce'],
            f'loss_unfused_vs_ce{suffix}': times['unfused'] / times['ce']})
    t_loop = timed(fwd_bwd(loop_reference), args.device, args.loop_reps,
                   warmup=1)
    t_fwd = timed(ours_forward, args.device, args.reps, warmup=2)
    t_tm = timed(torchmetrics, args.device, args.reps, warmup=2)
    result.update(
        loop_fwd_bwd_s=t_loop, diffece_fwd_s=t_fwd, torchmetrics_s=t_tm,
        loss_vs_loop=t_loop / result['diffece_fwd_bwd_s'],
        loss_vs_torchmetrics=t_tm / t_fwd)
    if profile:
        run = fwd_bwd(loss, torch.bfloat16)
        write_profile(lambda: [run() for _ in range(5)], args.device, profile)
    return result


# networks of the step benchmark: their shipped stage-1 configs
STEP_CONFIGS = dict(deeplabv2='deeplabv2_r101_gta5_source.py',
                    segformer='segformer_mit-b2_gta5_source.py')


def build_model(args, with_ece: bool):
    """The stage-1 model of ``args.network``, with or without DiffECE."""
    from mmseg.registry import MODELS
    cfg = stage_config(STEP_CONFIGS[getattr(args, 'network', 'deeplabv2')],
                       args.depth)
    cfg.model.data_preprocessor.size = (args.size, args.size)
    if not with_ece:
        cfg.model.calibration_loss = None
    return MODELS.build(cfg.model).to(args.device)


def bench_step(args, profile: Optional[str] = None) -> dict:
    """Times a train step with and without DiffECE; with ``profile``, also
    writes a profile of three steps with it there."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    imgs = [torch.randint(0, 255, (3, args.size, args.size),
                          dtype=torch.uint8) for _ in range(args.batch)]
    samples = []
    for _ in range(args.batch):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 19, (1, args.size, args.size)))
        s.set_metainfo(dict(img_shape=(args.size, args.size),
                            ori_shape=(args.size, args.size),
                            pad_shape=(args.size, args.size)))
        samples.append(s)
    data = dict(inputs=imgs, data_samples=samples)
    base = build_model(args, with_ece=False)
    steps = {}
    for name, with_ece in (('ce', False), ('ce_diffece', True)):
        model = build_model(args, with_ece)
        model.load_state_dict(base.state_dict())
        model.train()
        optim = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
        wrapper = (AmpOptimWrapper(optimizer=optim, dtype='bfloat16')
                   if args.amp else OptimWrapper(optimizer=optim))
        steps[name] = lambda m=model, w=wrapper: m.train_step(data, w)
    del base
    result = {}
    for name, step in steps.items():  # warm-up, then peak memory of a step
        step()
        step()
        reset_peak_memory(args.device)
        held = allocated_mib(args.device)  # both models and optimizers
        step()
        peak = peak_memory_mib(args.device)
        result[f'{name}_peak_mem_mib'] = peak
        # what the step itself adds (activations, gradients, loss)
        result[f'{name}_step_mem_mib'] = (None if peak is None else
                                          peak - held)
    for name, seconds in interleaved(steps, args.device, args.reps).items():
        result[f'{name}_step_s'] = seconds
    result['diffece_step_overhead'] = (result['ce_diffece_step_s'] /
                                       result['ce_step_s'])
    if profile:
        write_profile(lambda: [steps['ce_diffece']() for _ in range(3)],
                      args.device, profile)
    result.update(network=getattr(args, 'network', 'deeplabv2'),
                  batch=args.batch, size=args.size, depth=args.depth,
                  amp='bf16' if args.amp else 'fp32')
    return result


def main():
    args = parse_args()
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    register_all_modules()
    results = dict(environment=environment(args.device))
    results['loss'] = bench_loss(args, args.loss_size or args.size)
    results['step'] = bench_step(args)
    write_result(results, args.out)


if __name__ == '__main__':
    main()
