"""Runs every Cal-SFDA benchmark; one JSON, one table.

    python tools/benchmark/run_all.py                 # GPU, full sizes
    python tools/benchmark/run_all.py --small         # CPU-sized

Writes ``benchmarks/results/<device>-<date>.json`` and prints a table. All
numbers that matter are ratios measured in this one run (medians after
warm-up, CUDA-synchronised):

* ``diffece_step_overhead``: stage-1 train step CE + DiffECE / CE only
  (fp32, and bf16 AMP on CUDA), with peak memory, for DeepLabV2 and for
  SegFormer (MiT-B2), both built from their shipped stage-1 configs;
* ``loss_vs_loop`` / ``loss_vs_torchmetrics`` / ``loss_vs_ce``: the loss
  alone (the last vs cross-entropy, on fp32 logits and on bf16 logits
  under autocast);
* ``ece_metric``: ``ECEMetric`` over a stream of C x H x W logits vs
  torchmetrics' ``MulticlassCalibrationError``, time and peak memory at two
  stream lengths (ours must not grow with the number of pixels);
* ``pseudo_label_pass_vs_inference`` (estimates, thresholds, labels, PNG
  writes) and ``round_start_vs_inference`` (the same plus the BN warm-up);
* ``value_head_overhead``: forward with the value head / plain forward, and
  one BN warm-up batch / one plain forward.
"""
import argparse
import datetime
import os.path as osp
import sys
import traceback
from typing import Optional

import torch

# this script's folder is importable (Python puts it first on the path)
import ece_loss
import pseudo_label_pass
from report import (
    environment,
    peak_memory_mib,
    reset_peak_memory,
    stage_config,
    timed,
    write_result,
)

FULL = dict(batch=4, size=600, depth=101, reps=10, metric_images=50,
            metric_shape=(19, 1024, 2048), pl_images=50, pl_size=(1024, 2048))
SMALL = dict(batch=2, size=128, depth=50, reps=7, metric_images=6,
             metric_shape=(19, 256, 512), pl_images=8, pl_size=(256, 512))
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--small', action='store_true',
                        help='CPU-sized inputs (the default on CPU)')
    parser.add_argument('--only', nargs='+', metavar='SECTION',
                        help='run only these benchmarks (e.g. step_fp32 '
                        'loss ece_metric pseudo_label value_head)')
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'benchmarks',
                                                      'results'))
    parser.add_argument('--profile', action='store_true',
                        help='also profile one pseudo-label pass, the loss '
                        'on bf16 logits and the bf16 step: '
                        '<out-dir>/<section>_profile.txt')
    args = parser.parse_args()
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        sys.exit('error: --device cuda, but no CUDA GPU is available')
    return args


def step(device: str, sizes: dict, amp: bool,
         profile: Optional[str] = None,
         network: str = 'deeplabv2') -> dict:
    return ece_loss.bench_step(argparse.Namespace(
        device=device, batch=sizes['batch'], size=sizes['size'],
        depth=sizes['depth'], reps=sizes['reps'], amp=amp,
        network=network), profile)


def loss(device: str, sizes: dict, profile: Optional[str] = None) -> dict:
    return ece_loss.bench_loss(argparse.Namespace(
        device=device, batch=sizes['batch'], reps=sizes['reps'],
        loop_reps=2), sizes['size'], profile)


def ece_metric_stream(device: str, sizes: dict) -> dict:
    """ECEMetric vs torchmetrics over a stream of logits, at N and N/2
    images: memory of ours must stay flat, torchmetrics' grows."""
    from torchmetrics.classification import MulticlassCalibrationError

    from mmseg_calsfda.evaluation import ECEMetric
    num_classes, h, w = sizes['metric_shape']
    g = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn(num_classes, h, w, generator=g, device=device)
    label = torch.randint(0, num_classes, (1, h, w), generator=g,
                          device=device)
    sample = dict(seg_logits=dict(data=logits), gt_sem_seg=dict(data=label))
    result = {}
    for n in (sizes['metric_images'] // 2, sizes['metric_images']):

        def ours():
            metric = ECEMetric()
            metric.dataset_meta = dict(classes=list(range(num_classes)))
            for _ in range(n):
                metric.process({}, [sample])
            metric.evaluate(n)

        def theirs():
            metric = MulticlassCalibrationError(
                num_classes, n_bins=10, norm='l1').to(device)
            for _ in range(n):
                metric.update(logits[None], label)
            metric.compute()

        for name, fn in (('ece_metric', ours), ('torchmetrics', theirs)):
            reset_peak_memory(device)
            result[f'{name}_{n}img_s'] = timed(fn, device)
            result[f'{name}_{n}img_peak_mem_mib'] = peak_memory_mib(device)
    result['shape'] = [sizes['metric_images'], num_classes, h, w]
    n = sizes['metric_images']
    result['ece_metric_vs_torchmetrics'] = (
        result[f'ece_metric_{n}img_s'] / result[f'torchmetrics_{n}img_s'])
    if device.startswith('cuda'):  # peak memory at N / at N/2 images
        for name in ('ece_metric', 'torchmetrics'):
            result[f'{name}_peak_mem_growth'] = (
                result[f'{name}_{n}img_peak_mem_mib'] /
                result[f'{name}_{n // 2}img_peak_mem_mib'])
    return result


def value_head_overhead(device: str, sizes: dict) -> dict:
    from mmseg.registry import MODELS

    from mmseg_calsfda.engine import warmup_bn_stats
    cfg = stage_config('deeplabv2_gta2cs.py', sizes['depth'])
    model = MODELS.build(cfg.model).to(device).eval()
    inputs = torch.randn(sizes['batch'], 3, sizes['size'], sizes['size'],
                         device=device)
    batch = dict(inputs=[(x * 50 + 128).clamp(0, 255).byte()
                         for x in inputs.cpu()],
                 data_samples=None)

    def plain():
        with torch.no_grad():
            model.decode_head(model.extract_feat(inputs))

    def with_value_head():
        with torch.no_grad():
            feats = model.extract_feat(inputs)
            logits = model.decode_head(feats)
            model.value_head(model.value_inputs(feats, logits))

    def warmup_one_batch():
        warmup_bn_stats(model, [batch], num_batches=1)

    reps = sizes['reps']
    t_plain = timed(plain, device, reps, warmup=2)
    t_value = timed(with_value_head, device, reps, warmup=2)
    t_warm = timed(warmup_one_batch, device, reps, warmup=1)
    return dict(forward_s=t_plain, forward_with_value_head_s=t_value,
                bn_warmup_batch_s=t_warm,
                value_head_overhead=t_value / t_plain,
                bn_warmup_batch_vs_forward=t_warm / t_plain)


def table(result: dict) -> str:
    rows = [('diffece_step_overhead fp32', 'step_fp32',
             'diffece_step_overhead'),
            ('diffece_step_overhead bf16', 'step_bf16',
             'diffece_step_overhead'),
            ('diffece_step_overhead SegFormer fp32', 'step_segformer_fp32',
             'diffece_step_overhead'),
            ('diffece_step_overhead SegFormer bf16', 'step_segformer_bf16',
             'diffece_step_overhead'),
            ('loss_vs_loop', 'loss', 'loss_vs_loop'),
            ('loss_vs_torchmetrics', 'loss', 'loss_vs_torchmetrics'),
            ('loss_vs_ce fp32 (DiffECE / CE, fwd + bwd)', 'loss',
             'loss_vs_ce'),
            ('loss_vs_ce bf16', 'loss', 'loss_vs_ce_bf16'),
            ('loss_unfused_vs_ce fp32 (fused=False)', 'loss',
             'loss_unfused_vs_ce'),
            ('loss_unfused_vs_ce bf16', 'loss', 'loss_unfused_vs_ce_bf16'),
            ('ece_metric_vs_torchmetrics', 'ece_metric',
             'ece_metric_vs_torchmetrics'),
            ('pseudo_label_pass_vs_inference', 'pseudo_label',
             'pseudo_label_pass_vs_inference'),
            ('pseudo_label_pass_vs_inference (cache on disk)',
             'pseudo_label', 'pseudo_label_pass_disk_vs_inference'),
            ('round_start_vs_inference (+ BN warm-up)', 'pseudo_label',
             'round_start_vs_inference'),
            ('pinned_inference_vs_inference (pinned, non-blocking copy)',
             'pseudo_label', 'pinned_inference_vs_inference'),
            ('pseudo_label_pass_vs_inference, both pinned', 'pseudo_label',
             'pseudo_label_pass_pinned_vs_inference'),
            ('value_head_overhead', 'value_head', 'value_head_overhead'),
            ('bn_warmup_batch_vs_forward', 'value_head',
             'bn_warmup_batch_vs_forward')]
    width = max(len(name) for name, _, _ in rows)
    lines = []
    for name, section, key in rows:
        part = result.get(section)
        if part is None:
            continue
        value = (f'{part[key]:8.3f}' if key in part else
                 'failed: ' + part.get('error', '?').splitlines()[-1])
        lines.append(f'{name:<{width}}  {value}')
    return '\n'.join(lines)


def sections(device: str, sizes: dict,
             profile_dir: Optional[str] = None) -> dict:
    """Every benchmark by the name its result is stored under; with
    ``profile_dir``, the bf16 step, the loss and the pass also write
    ``<section>_profile.txt`` there."""
    def profile(section):
        return (osp.join(profile_dir, f'{section}_profile.txt')
                if profile_dir else None)

    height, width = sizes['pl_size']
    return dict(
        step_fp32=lambda: step(device, sizes, amp=False),
        step_bf16=lambda: step(device, sizes, amp=True,
                               profile=profile('step_bf16')),
        step_segformer_fp32=lambda: step(device, sizes, amp=False,
                                         network='segformer'),
        step_segformer_bf16=lambda: step(device, sizes, amp=True,
                                         network='segformer'),
        loss=lambda: loss(device, sizes, profile('loss')),
        ece_metric=lambda: ece_metric_stream(device, sizes),
        pseudo_label=lambda: pseudo_label_pass.measure(argparse.Namespace(
            device=device, depth=sizes['depth'], height=height, width=width,
            num_images=sizes['pl_images'], warmup_batches=2, reps=3),
                                                     profile('pseudo_label')),
        value_head=lambda: value_head_overhead(device, sizes))


def main():
    args = parse_args()
    from mmseg.utils import register_all_modules

    import mmseg_calsfda  # noqa: F401
    register_all_modules()
    small = args.small or not args.device.startswith('cuda')
    sizes = SMALL if small else FULL
    result = dict(environment=environment(args.device),
                  sizes='small' if small else 'full')
    name = (torch.cuda.get_device_name().replace(' ', '_')
            if args.device.startswith('cuda') else 'cpu')
    out = osp.join(args.out_dir,
                   f'{name}-{datetime.date.today().isoformat()}.json')
    benchmarks = sections(args.device, sizes,
                          args.out_dir if args.profile else None)
    if not args.device.startswith('cuda'):
        # AMP is a CUDA feature here
        del benchmarks['step_bf16'], benchmarks['step_segformer_bf16']
    for section, run in benchmarks.items():
        if args.only and section not in args.only:
            continue
        try:
            result[section] = run()
        except Exception:  # one failed benchmark must not lose the others
            result[section] = dict(error=traceback.format_exc())
            print(result[section]['error'], file=sys.stderr)
        write_result(result, out, echo=False)  # partial results survive
    print('\n' + table(result) + f'\n\nwritten to {out}')


if __name__ == '__main__':
    main()
