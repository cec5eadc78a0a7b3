"""Cal-SFDA on a laptop: the built-in procedural benchmark, end to end.

    python tools/demo.py --work-dir work_dirs/demo

1. generates the synthetic -> real benchmark (GTA5-style labelled source,
   Cityscapes-style target) under ``WORK_DIR/data``;
2. stage 1: trains DeepLabV2 (ResNet-18 on CPU) with CE + DiffECE on the
   source through MMSeg's Runner, keeping the checkpoint with the lowest
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
   one: on this benchmark the decode-head epochs that follow it amplify
   the confidently wrong pseudo-labels (cars labelled truck, sidewalk
   labelled road) and lose mIoU at every learning rate tried (README,
   "Demo results");
5. writes ``WORK_DIR/results.json`` and ``results.md``.

Each stage runs the real config from ``configs/calsfda/`` at CPU size
(``mmseg_calsfda.testing.shrink_config``). The console shows a header and a
progress bar per stage and the result table; everything the Runners print
goes to ``WORK_DIR/console.log`` (each run also keeps its full log under
``WORK_DIR/<stage>/<timestamp>/``).
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Optional

warnings.filterwarnings('ignore', message='.*pkg_resources is deprecated')

from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmseg.registry import RUNNERS  # noqa: E402

from mmseg_calsfda.console import QuietConsole  # noqa: E402
from mmseg_calsfda.evaluation import scalar_metrics  # noqa: E402
from mmseg_calsfda.testing import set_run_name, shrink_config  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs', 'calsfda')

SIZES = dict(
    full=dict(height=128, width=256, source_train=200, source_val=50,
              target_train=200, target_val=50, iters=400, value_iters=300,
              crop=128, warmup_batches=25, rounds=3, epochs_per_round=1),
    tiny=dict(height=64, width=128, source_train=8, source_val=4,
              target_train=6, target_val=4, iters=4, value_iters=2, crop=64,
              warmup_batches=2, rounds=1, epochs_per_round=2))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--tiny', action='store_true',
        help='a few images and iterations: checks the pipeline, not the '
        'method')
    return parser.parse_args()


def generate_data(data_dir: str, size: dict, seed: int,
                  shift: str = 'default') -> None:
    from mmseg_calsfda.datasets.synthetic import write_benchmark
    done = osp.join(data_dir, f'.done_seed{seed}_{shift}')
    if osp.exists(done):
        return
    write_benchmark(data_dir, seed, size['height'], size['width'],
                    size['source_train'], size['source_val'],
                    size['target_train'], size['target_val'], shift=shift)
    open(done, 'w').close()


def stage_config(args, size: dict, data_dir: str, name: str, work_dir: str,
                 iters: int, lr: Optional[float], **kwargs) -> Config:
    """A stage config as shipped, shrunk to a CPU-sized run."""
    cfg = shrink_config(
        Config.fromfile(osp.join(CONFIGS, name)), data_dir,
        osp.join(args.work_dir, work_dir),
        image_size=(size['height'], size['width']), crop=size['crop'],
        max_iters=iters, lr=lr, seed=args.seed, **kwargs)
    if args.device == 'cpu':
        cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.custom_hooks.append(dict(type='ProgressBarHook'))
    return cfg


def target_dataloader(cfg: Config, data_dir: str, split: str) -> dict:
    """Cityscapes-style target images: ``val`` with labels (reporting
    only), ``train`` without."""
    loader = cfg.val_dataloader.copy()
    resize = [p for p in loader.dataset.pipeline if p['type'] == 'Resize']
    labels = [dict(type='LoadAnnotations')] if split == 'val' else []
    prefix = dict(img_path=f'leftImg8bit/{split}')
    if split == 'val':
        prefix['seg_map_path'] = 'gtFine/val'
    loader.dataset = dict(
        type='CheckedCityscapesDataset',
        data_root=osp.join(data_dir, 'cityscapes'),
        data_prefix=prefix,
        pipeline=[dict(type='LoadImageFromFile'), *resize, *labels,
                  dict(type='PackSegInputs')])
    return loader


def evaluate(cfg: Config, checkpoint: str, dataloader: dict, name: str,
             evaluator=None, hooks=()) -> dict:
    """Tests ``checkpoint`` on ``dataloader`` with the stage's config."""
    cfg = cfg.copy()
    cfg.work_dir = osp.join(cfg.work_dir, f'eval_{name}')
    set_run_name(cfg, f'{cfg.experiment_name}_eval_{name}')
    cfg.load_from = checkpoint
    cfg.test_dataloader = dataloader
    cfg.test_evaluator = evaluator or [
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='ECEMetric', n_bins=10, output_dir=cfg.work_dir)
    ]
    cfg.custom_hooks = list(hooks)
    return scalar_metrics(RUNNERS.build(cfg).test())


def scores(metrics: dict, prefix: str) -> dict:
    """mIoU, ECE and cECE of an evaluation, under ``prefix``."""
    return {prefix + key: metrics[key] for key in ('mIoU', 'ECE', 'cECE')}


def target_bn_warmup(cfg: Config, size: dict, data_dir: str,
                     modules=('value_head', )) -> dict:
    """A hook re-estimating ``modules``' BN statistics on target train
    images before testing."""
    return dict(type='BNWarmupHook', before='test',
                num_batches=size['warmup_batches'], modules=modules,
                dataloader=target_dataloader(cfg, data_dir, 'train'))


def best_checkpoint(work_dir: str, key: str = 'cECE') -> str:
    names = [f for f in os.listdir(work_dir) if f.startswith(f'best_{key}_')]
    if len(names) != 1:
        raise RuntimeError(f'expected one best_{key}_*.pth in {work_dir}, '
                           f'found {names}')
    return osp.join(work_dir, names[0])


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


def run_source_stage(args, size, data_dir, ece_loss: bool = True,
                     name: Optional[str] = None,
                     edit_cfg: Optional[Callable[[Config], None]] = None
                     ) -> dict:
    """Stage 1 (or, without ``ece_loss``, its CE-only twin) in
    ``WORK_DIR/name``; ``edit_cfg`` changes the shrunk stage config in
    place (experiments)."""
    name = name or ('stage1_source' if ece_loss else 'stage1_ce_only')
    cfg = stage_config(args, size, data_dir, 'deeplabv2_r101_gta5_source.py',
                       name, size['iters'], lr=0.01)
    if not ece_loss:
        cfg.model.calibration_loss = None
        cfg.custom_hooks = [dict(type='ProgressBarHook')]
    if edit_cfg is not None:
        edit_cfg(cfg)
    RUNNERS.build(cfg).train()
    ckpt = best_checkpoint(cfg.work_dir)
    target = evaluate(cfg, ckpt, target_dataloader(cfg, data_dir, 'val'),
                      'target_val')
    result = dict(checkpoint=osp.relpath(ckpt, args.work_dir))
    if ece_loss:
        source = evaluate(cfg, ckpt, cfg.val_dataloader, 'source_val')
        result.update(scores(source, 'source_val_'))
    return dict(result, **scores(target, 'target_'))


def run_value_stage(args, size, data_dir, stage1: str,
                    name: str = 'stage2_value',
                    edit_cfg: Optional[Callable[[Config], None]] = None
                    ) -> tuple:
    """Stage 2; returns (ECE estimation on target val, the AdaBN-only
    baseline: the stage-2 model with target BN statistics and nothing
    trained -- how much of the adaptation BN re-estimation alone gives).
    ``edit_cfg`` changes the shrunk stage config in place (experiments)."""
    cfg = stage_config(args, size, data_dir, 'deeplabv2_r101_gta5_value.py',
                       name, size['value_iters'], lr=None)
    cfg.load_from = osp.join(args.work_dir, stage1)
    if edit_cfg is not None:
        edit_cfg(cfg)
    RUNNERS.build(cfg).train()
    ckpt = osp.join(cfg.work_dir, f'iter_{size["value_iters"]}.pth')
    target_val = target_dataloader(cfg, data_dir, 'val')
    metric = [dict(type='EstimatedECEMetric', with_labels=True)]
    without = evaluate(cfg, ckpt, target_val, 'target_val_no_warmup', metric)
    with_warmup = evaluate(cfg, ckpt, target_val, 'target_val_warmup',
                           metric,
                           hooks=[target_bn_warmup(cfg, size, data_dir)])
    adabn = evaluate(
        cfg, ckpt, target_val, 'target_val_adabn',
        hooks=[target_bn_warmup(cfg, size, data_dir,
                                ('backbone', 'value_head'))])
    estimation = dict(
        checkpoint=osp.relpath(ckpt, args.work_dir),
        spearman=with_warmup['ece_spearman'],
        pearson=with_warmup['ece_pearson'],
        mean_estimated_ECE=with_warmup['estECE'],
        mean_true_ECE=with_warmup['trueECE'],
        spearman_no_warmup=without['ece_spearman'],
        pearson_no_warmup=without['ece_pearson'],
        mean_estimated_ECE_no_warmup=without['estECE'])
    return estimation, scores(adabn, 'target_')


def target_stage_config(args, size: dict, data_dir: str, stage2: str,
                        name: str, rounds: int, epochs_per_round: int
                        ) -> Config:
    """Stage 3 (``deeplabv2_gta2cs.py``) from the ``stage2`` checkpoint,
    shrunk, with ``rounds`` x ``epochs_per_round`` epochs."""
    # the demo keeps the stage-3 lr its recipe was chosen with (2.5e-4);
    # the shipped GTA5/SYNTHIA -> Cityscapes configs use the official 5e-5
    cfg = stage_config(args, size, data_dir, 'deeplabv2_gta2cs.py', name, 0,
                       lr=2.5e-4, max_epochs=rounds * epochs_per_round)
    cfg.load_from = osp.join(args.work_dir, stage2)
    self_training, bn_warmup = cfg.custom_hooks[:2]
    self_training.epochs_per_round = epochs_per_round
    self_training.bn_warmup_batches = size['warmup_batches']
    bn_warmup.num_batches = size['warmup_batches']
    return cfg


def run_target_stage(args, size, data_dir, stage2: str) -> tuple:
    """Stage 3; returns (adapted, selection) from selection.json."""
    cfg = target_stage_config(args, size, data_dir, stage2, 'stage3_target',
                              size['rounds'], size['epochs_per_round'])
    RUNNERS.build(cfg).train()
    with open(osp.join(cfg.work_dir, 'selection.json')) as f:
        selection = json.load(f)
    chosen = selection['selected']
    ckpt = osp.join(cfg.work_dir, selection['checkpoint'])
    # the label-free choice on labelled target val (report + diagram)
    target = evaluate(cfg, ckpt, target_dataloader(cfg, data_dir, 'val'),
                      'target_val')
    adapted = dict(
        checkpoint=osp.relpath(ckpt, args.work_dir), epoch=chosen['epoch'],
        estimated_ECE=chosen['estECE'], **scores(target, 'target_'))
    summary = dict(
        ece_selected_mIoU=chosen['mIoU'],
        oracle_mIoU=selection['oracle']['mIoU'],
        last_mIoU=selection['last']['mIoU'],
        ece_selected_epoch=chosen['epoch'],
        oracle_epoch=selection['oracle']['epoch'],
        epochs=len(selection['history']))
    return adapted, summary


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
    results = {}
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
    print(f'\n== results ({osp.join(args.work_dir, "results.md")}; '
          f'full logs: {console.path})\n')
    write_results(args.work_dir, results)
    console.close()


if __name__ == '__main__':
    main()
