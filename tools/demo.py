"""Cal-SFDA on a laptop: the built-in procedural benchmark, end to end.

    python tools/demo.py --work-dir work_dirs/demo

1. generates the synthetic -> real benchmark (GTA5-style labelled source,
   Cityscapes-style target) under ``WORK_DIR/data``;
2. stage 1: trains MMSeg's DeepLabV3+ on an ImageNet-pretrained
   EfficientNet-Lite0 (``--network resnet18``: the shipped DeepLabV2 with a
   small ResNet-18 trained from scratch) with CE + DiffECE on the source
   through MMSeg's Runner, keeping the checkpoint with the lowest
   source-val class-level ECE, and evaluates it on source and target val
   (mIoU, ECE, cECE);
   A CE-only twin (same recipe without DiffECE) is trained for comparison;
3. stage 2: trains the ECE value head (it reads the segmentor's class
   probabilities, at the config's learning rate) on the frozen stage-1
   model and measures, on held-out labelled target images, how well its
   estimates rank the true per-image class-level ECE (Spearman), with and
   without the BN warm-up on unlabelled target images; as a baseline it
   evaluates that model with target BN statistics and nothing trained
   (AdaBN alone);
4. stage 3: adapts to the unlabelled target in self-training rounds and
   keeps the checkpoint with the lowest *estimated* ECE; target val labels
   are read only to report that choice beside the oracle and the last
   checkpoint. Each round here is one epoch, the norm-affine (TENT-like)
   one, at the network's stage-3 learning rate
   (``mmseg_calsfda.testing.demo_stages.NETWORKS``);
5. writes ``WORK_DIR/results.json`` and ``results.md``.

Run again with the same ``--work-dir``, it reuses every stage that finished
there (``demo_stages.train_stage``) and trains the rest.

Each stage runs the real config from ``configs/calsfda/`` at CPU size
(``mmseg_calsfda.testing``: ``shrink_config``; the stages are
``mmseg_calsfda.testing.demo_stages``). The console shows a header per
stage, a labelled progress bar for each training, validation, evaluation
and pseudo-label pass (one at a time), each stage's time, the result tables,
the total time and where the results and reliability diagrams are;
everything the Runners print goes to ``WORK_DIR/console.log`` (each run
also keeps its full log under ``WORK_DIR/<stage>/<timestamp>/``).
"""
import argparse
import glob
import json
import logging
import os
import os.path as osp
import sys
import warnings

warnings.filterwarnings('ignore', message='.*pkg_resources is deprecated')

from mmengine.logging import MMLogger  # noqa: E402

from mmseg_calsfda.console import QuietConsole  # noqa: E402
from mmseg_calsfda.testing.demo_stages import (  # noqa: E402
    SIZES,
    add_network_argument,
    generate_data,
    run_source_stage,
    run_target_stage,
    run_value_stage,
)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0] + ' Generates the data, runs '
        'stages 1-3 and writes WORK_DIR/results.json and results.md, the '
        'reliability diagrams (WORK_DIR/<stage>/eval_*/'
        'reliability_diagram.png) and the Runners\' logs '
        '(WORK_DIR/console.log). About 5 minutes on 2 idle CPU cores '
        '(--network resnet18: about 13; --tiny: about 3).')
    parser.add_argument(
        '--work-dir', default='work_dirs/demo',
        help='where the data, checkpoints, logs and results go (default: '
        '%(default)s)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='seed of the generated benchmark and of training (default: '
        '%(default)s)')
    parser.add_argument(
        '--device', choices=['cpu', 'cuda'], default='cpu',
        help='where to train and evaluate (default: %(default)s)')
    add_network_argument(parser, default='efficientnet_lite0')
    parser.add_argument(
        '--tiny', action='store_true',
        help='a few images and iterations: checks the pipeline, not the '
        'method')
    return parser.parse_args()


def _row(name: str, split: str, m: dict, prefix: str = '') -> str:
    return (f"| {name} | {split} | {m[prefix + 'mIoU']:.2f} | "
            f"{m.get(prefix + 'ECE', float('nan')):.2f} | "
            f"{m[prefix + 'cECE']:.2f} |")


def write_results(work_dir: str, results: dict) -> None:
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    src, est = results['source_only'], results['ece_estimation']
    sel = results['selection']
    lines = [
        '| model | split | mIoU | ECE | cECE |', '|---|---|---|---|---|',
        _row('stage 1, CE + DiffECE', 'source val', src, 'source_val_'),
        _row('stage 1, CE + DiffECE', 'target val', src, 'target_'),
        _row('stage 1, CE only (twin)', 'target val', results['ce_only'],
             'target_'),
        _row('stage 2, AdaBN only (no training)', 'target val',
             results['adabn_only'], 'target_'),
        _row('adapted (ECE-selected)', 'target val', results['adapted'],
             'target_'), '',
        '| checkpoint choice (target val mIoU) | mIoU |', '|---|---|',
        f"| lowest estimated ECE (no labels) | "
        f"{sel['ece_selected_mIoU']:.2f} |",
        f"| oracle (best val mIoU) | {sel['oracle_mIoU']:.2f} |",
        f"| last | {sel['last_mIoU']:.2f} |", '',
        '| ECE estimation on target val (per image) | Spearman | Pearson |',
        '|---|---|---|',
        f"| value head, BN warm-up on target | {est['spearman']:.3f} | "
        f"{est['pearson']:.3f} |",
        f"| value head, source BN statistics | "
        f"{est['spearman_no_warmup']:.3f} | {est['pearson_no_warmup']:.3f} |"
    ]
    table = '\n'.join(lines)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


def main():
    args = parse_args()
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            sys.exit('error: --device cuda, but no CUDA GPU is available')
    else:
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    size = SIZES['tiny' if args.tiny else 'full']
    console = QuietConsole(args.work_dir)
    data_dir = osp.join(args.work_dir, 'data')
    with console.stage(f'data: the procedural benchmark (seed {args.seed})'
                       f' in {data_dir}'):
        generate_data(data_dir, size, args.seed)
    results = dict(network=args.network, seed=args.seed)
    with console.stage('stage 1: source pre-training, CE + DiffECE; '
                       'evaluation on source and target val'):
        results['source_only'] = run_source_stage(args, size, data_dir)
    with console.stage('stage 1, twin: CE only'):
        results['ce_only'] = run_source_stage(args, size, data_dir, False)
    with console.stage('stage 2: the value head; ECE estimation and AdaBN '
                       'on target val'):
        results['ece_estimation'], results['adabn_only'] = run_value_stage(
            args, size, data_dir, results['source_only']['checkpoint'])
    with console.stage('stage 3: self-training on the unlabelled target, '
                       'label-free checkpoint selection'):
        results['adapted'], results['selection'] = run_target_stage(
            args, size, data_dir, results['ece_estimation']['checkpoint'])
        MMLogger.get_current_instance().setLevel(logging.WARNING)
    print(f'\n== results ({osp.join(args.work_dir, "results.md")})\n')
    write_results(args.work_dir, results)
    print(closing_lines(args.work_dir, console))
    console.close()


def closing_lines(work_dir: str, console: QuietConsole) -> str:
    """The total time and where the results, plots and logs are."""
    diagrams = sorted(
        glob.glob(osp.join(work_dir, '*', 'eval_*',
                           'reliability_diagram.png')))
    lines = [
        f'\n== done in {console.elapsed()}',
        'results: ' + ', '.join(
            osp.join(work_dir, name) for name in ('results.json',
                                                  'results.md')),
        'reliability diagrams:',
        *(f'  {path}' for path in diagrams),
        f'Runner logs: {console.path}',
    ]
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
