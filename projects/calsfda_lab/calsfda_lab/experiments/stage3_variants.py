"""Stage-3 loss and learning-rate variants from a finished compare.py run.

    python -m calsfda_lab.experiments.stage3_variants work_dirs/tune_hard_s0 \\
        --variants shipped noent sceonly nocw lr5 --rounds 1 --epochs 4

Trains ``calsfda`` (compare.py's stage 3) again from the run's stage-2
checkpoint, once per variant, and prints target-val mIoU and the estimated
ECE after every epoch (``WORK_DIR/variant_<name>/selection.json``; all
variants run so far in ``WORK_DIR/variants.json``). A
variant is a ``-``-joined list of changes:

* ``noent``: no entropy term; ``sceonly``: SCE alone (no entropy, no
  negative learning);
* ``nocw``: uniform SCE class weights instead of ``softmax(1/tau)``
  (:class:`~calsfda_lab.variants.UniformWeightPseudoLabeler`);
* ``fullnet``: decode-head epochs train the backbone too (the reference
  freezes it);
* ``lr5``: the official learning rate, 5e-5, instead of the network's
  (``demo_stages.NETWORKS``); ``lr0``: no learning at all (what changes
  without a weight update?); ``lr`` and a decimal number, e.g.
  ``lr0.001``: that rate;
* ``cbst``: ``s = max p`` (no ECE scaling); ``cb50``: class-balanced share
  0.5 instead of 0.15 (more, less confident pixels); ``nolocal``: no
  per-image local selection (``local_prop`` 0: only the class-balanced
  share, so the kept labels follow the predicted class frequencies);
  ``shipped``: no change;
* diagnostics with the target's *true* labels: ``gtmask`` keeps the
  pseudo-labels' pixels but gives them their true class (is it which
  pixels are kept, or their wrong labels?); ``gtfull`` trains on the true
  labels of every pixel (what the stage-3 schedule can learn at all);
  ``gtfix50`` / ``gtfix75`` correct a fixed random half / three quarters
  of the kept pixels whose label is wrong (how precise must the
  pseudo-labels be to pay?);
* ``ccaug``: the training crops get a :class:`ClassConditionalColorShift`
  (every image; share up to 0.8, half of the pseudo-labelled classes),
  computed on the pseudo-labels -- a confident pixel is then seen with part
  of another class's colour, and keeps its label;
* ``photo``: MMSeg's ``PhotoMetricDistortion`` on the training crops
  (before packing): the pseudo-labels come from the plain image, the
  student sees a distorted one (a FixMatch-like weak/strong pair; with
  ``fullnet`` the backbone can learn from it);
* ``mix``: :class:`ClassMix` between two pseudo-labelled training crops
  (MMSeg's ``MultiImageMixDataset``; half the other crop's kept classes
  pasted on every crop): DACS-style self-training without source images,
  so that a confident pixel is seen in a context it was not labelled in;
* ``trueece``: the per-image ECE that scales the scores is the image's
  *true* class-level ECE (from the target's training labels) instead of
  the value head's estimate: what calibration-guided selection could do
  with a perfect estimator (a diagnostic);
* ``srcbn``: the backbone keeps its *source* BatchNorm statistics (no
  warm-up of the backbone, ``norm_eval=True``; the norm-affine epoch still
  trains the affine parameters);
* ``notent``: no norm-affine first epoch: every epoch of a round trains
  the decode head (``SelfTrainingHook(tent_first_epoch=False)``);
* ``ls`` and a decimal number, e.g. ``ls0.1``: the SCE's CE term with that
  label smoothing (``SymmetricCELoss(label_smoothing=...)``), so that its
  optimum leaves the kept pixels' confidence below 1; ``ceonly``: the SCE
  as a plain class-weighted CE (``alpha=1, beta=0``: no reverse CE, whose
  pull towards confidence 1 smoothing does not cap);
* ``imgece``: start from a stage 2 whose value head learned each image's
  plain ECE instead of its class-level ECE
  (:class:`~calsfda_lab.variants.ImageECESegmentor`; trained once into
  ``WORK_DIR/stage2_value_imgece`` from the run's stage-1 checkpoint), so
  that the selection and the scaling follow the estimated plain ECE;
* ``present``: start from a stage 2 whose value head learned each image's
  class-level ECE averaged over the classes present in it
  (``CalSFDASegmentor(ece_class_average='present')``; trained once into
  ``WORK_DIR/stage2_value_present``) instead of over all classes;
* ``vlr`` and a decimal number, e.g. ``vlr0.001``: start from a stage 2
  whose value head trained at that Adam learning rate instead of the
  stage-2 config's 1e-4 (trained once into
  ``WORK_DIR/stage2_value_lr<rate>``, with ``imgece``
  ``WORK_DIR/stage2_value_imgece_lr<rate>``);
* ``vit`` and a number, e.g. ``vit3000``: start from a stage 2 of that
  many iterations instead of the run's (``WORK_DIR/stage2_value_it<N>``;
  with ``vlr``: ``..._lr<rate>_it<N>``).

A variant whose folder already holds a checkpoint continues from it (a
finished one is reused as it is, and says so): delete
``WORK_DIR/variant_<name>`` to train it again, e.g. after a code change.

An experiment, not a benchmark: it reads the run's target val labels.
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Optional

from mmengine.runner.checkpoint import find_latest_checkpoint
from mmseg.registry import RUNNERS

from mmseg_calsfda.testing import demo_stages as demo
from mmseg_calsfda.testing.demo_stages import set_entropy_weight

from .. import compare
from .collect_variants import history
from .value_head_shift import with_shift

CHANGES = ('shipped', 'noent', 'sceonly', 'nocw', 'lr5', 'lr0', 'cbst',
           'cb50', 'fullnet', 'gtmask', 'gtfull', 'gtfix50', 'gtfix75',
           'ccaug', 'srcbn', 'trueece', 'nolocal', 'photo', 'mix', 'notent',
           'ceonly', 'imgece', 'present')
# any other stage-3 learning rate: 'lr' and a decimal number, e.g. lr0.001
RATE = re.compile(r'lr(\d*\.\d+)')
# the SCE's label smoothing: 'ls' and a decimal number, e.g. ls0.1
SMOOTHING = re.compile(r'ls(\d*\.\d+)')
# the value head's stage-2 learning rate: 'vlr' and a decimal number
VALUE_RATE = re.compile(r'vlr(\d*\.\d+)')
# stage 2's iterations: 'vit' and a number, e.g. vit3000
VALUE_ITERS = re.compile(r'vit([1-9]\d*)')
# the changes that carry a number
NUMBERED = (RATE, SMOOTHING, VALUE_RATE, VALUE_ITERS)
# the true-label diagnostics: which share of the wrong kept labels each
# corrects (gtfull also labels every pixel)
TRUE_LABEL_FIX = dict(gtmask=1.0, gtfull=1.0, gtfix50=0.5, gtfix75=0.75)
# ccaug's transform settings (every training crop)
CC_SHIFT = dict(prob=1.0, max_share=0.8, class_prob=0.5)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a finished calsfda_lab.compare run')
    parser.add_argument('--variants', nargs='+', default=['shipped'])
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--epochs', type=int, default=4,
                        help='epochs per round')
    args = parser.parse_args()
    for variant in args.variants:
        unknown = {c for c in variant.split('-')
                   if c not in CHANGES
                   and not any(p.fullmatch(c) for p in NUMBERED)}
        if unknown:
            sys.exit(f'error: unknown change(s) {sorted(unknown)} in '
                     f'{variant!r}; valid: {", ".join(CHANGES)}')
        true_label = [c for c in variant.split('-') if c in TRUE_LABEL_FIX]
        if len(true_label) > 1:
            sys.exit(f'error: {variant!r} names more than one true-label '
                     f'change ({", ".join(true_label)}); use one of '
                     f'{", ".join(TRUE_LABEL_FIX)}')
    return args


def value_rate(changes: list) -> Optional[float]:
    """The stage-2 learning rate a ``vlr<rate>`` change names, or None."""
    rates = [float(c[3:]) for c in changes if VALUE_RATE.fullmatch(c)]
    return rates[-1] if rates else None


def value_iters(changes: list) -> Optional[int]:
    """The stage-2 iterations a ``vit<N>`` change names, or None."""
    iters = [int(c[3:]) for c in changes if VALUE_ITERS.fullmatch(c)]
    return iters[-1] if iters else None


def stage2_size(size: dict, changes: list) -> dict:
    """The run's sizes with the stage-2 iterations a ``vit<N>`` change
    names."""
    iters = value_iters(changes)
    return size if iters is None else dict(size, value_iters=iters)


def stage2_dir(changes: list) -> str:
    """The stage-2 run a variant starts from (relative to the work dir):
    the run's own unless ``imgece``, ``present``, ``vlr<rate>`` or
    ``vit<N>`` asks for another."""
    name = 'stage2_value'
    if 'imgece' in changes:
        name += '_imgece'
    if 'present' in changes:
        name += '_present'
    rate, iters = value_rate(changes), value_iters(changes)
    if rate is not None:
        name += f'_lr{rate:g}'
    if iters is not None:
        name += f'_it{iters}'
    return name


def stage2_checkpoint(size: dict, changes: list) -> str:
    """The stage-2 checkpoint a variant loads (relative to the work
    dir)."""
    iters = stage2_size(size, changes)['value_iters']
    return f'{stage2_dir(changes)}/iter_{iters}.pth'


def train_variant_stage2(run, size: dict, changes: list) -> None:
    """The stage 2 a variant starts from, from the run's stage-1
    checkpoint: with :class:`~calsfda_lab.variants.ImageECESegmentor`
    (``imgece``), another learning rate (``vlr<rate>``) and/or other
    iterations (``vit<N>``); nothing to do for the run's own or when its
    last checkpoint exists."""
    name = stage2_dir(changes)
    if name == 'stage2_value' or osp.isfile(
            osp.join(run.work_dir, stage2_checkpoint(size, changes))):
        return
    stage1 = compare.stage1_checkpoint(run.work_dir)

    rate = value_rate(changes)

    def edit(cfg) -> None:
        if 'imgece' in changes:
            cfg.model.type = 'ImageECESegmentor'
        if 'present' in changes:
            cfg.model.ece_class_average = 'present'
        if rate is not None:
            cfg.optim_wrapper.optimizer.lr = rate

    demo.run_value_stage(run, stage2_size(size, changes),
                         osp.join(run.work_dir, 'data'), stage1, name, edit)


def variant_cfg(run, size: dict, variant: str, rounds: int, epochs: int):
    data_dir = osp.join(run.work_dir, 'data')
    changes = variant.split('-')
    cfg = compare._adapting_cfg(
        run, size, data_dir, stage2_checkpoint(size, changes),
        f'variant_{variant}', (rounds, epochs))
    losses = cfg.model.decode_losses
    if 'noent' in changes:
        set_entropy_weight(cfg, 0)
    if 'sceonly' in changes:
        cfg.model.decode_losses = [
            loss for loss in losses if loss['type'] == 'SymmetricCELoss'
        ]
    if 'lr5' in changes:
        cfg.optim_wrapper.optimizer.lr = 5e-5
    if 'lr0' in changes:
        cfg.optim_wrapper.optimizer.lr = 0.0
    for change in changes:
        if RATE.fullmatch(change):
            cfg.optim_wrapper.optimizer.lr = float(change[2:])
    sce = [loss for loss in cfg.model.decode_losses
           if loss['type'] == 'SymmetricCELoss']
    for change in changes:
        if SMOOTHING.fullmatch(change):
            sce[0]['label_smoothing'] = float(change[2:])
    if 'ceonly' in changes:
        sce[0].update(alpha=1.0, beta=0.0)
    if 'cb50' in changes:
        cfg.custom_hooks[0].pseudo_labeler.cb_prop = 0.5
    if 'nolocal' in changes:
        cfg.custom_hooks[0].pseudo_labeler.update(local_prop=0.0,
                                                  local_prop_step=0.0)
    if 'cbst' in changes:
        cfg = compare.cbst_cfg(cfg)
    if 'ccaug' in changes:
        with_shift(CC_SHIFT, 'probs')(cfg)
    if 'photo' in changes:
        pipeline = cfg.train_dataloader.dataset.pipeline
        pipeline.insert(packing_at(pipeline),
                        dict(type='PhotoMetricDistortion'))
    if 'mix' in changes:
        dataset = cfg.train_dataloader.dataset
        at = packing_at(dataset.pipeline)
        cfg.train_dataloader.dataset = dict(
            type='MultiImageMixDataset',
            dataset=dict(dataset, pipeline=dataset.pipeline[:at]),
            pipeline=[dict(type='ClassMix')] + dataset.pipeline[at:])
    if 'srcbn' in changes:
        cfg.custom_hooks[0].bn_warmup_modules = ('value_head', )
        cfg.model.backbone.norm_eval = True
    if 'notent' in changes:
        cfg.custom_hooks[0].tent_first_epoch = False
    # the changes inside the rounds: calsfda_lab.variants' components
    hook = cfg.custom_hooks[0]
    if 'nocw' in changes:
        hook.pseudo_labeler.type = 'UniformWeightPseudoLabeler'
    fix = [TRUE_LABEL_FIX[c] for c in changes if c in TRUE_LABEL_FIX]
    if {'fullnet', 'trueece'} & set(changes) or fix:
        hook.type = 'VariantSelfTrainingHook'
        hook.train_backbone = 'fullnet' in changes
        hook.true_ece = 'trueece' in changes
        if fix:
            hook.true_labels = dict(data_dir=data_dir,
                                    everywhere='gtfull' in changes,
                                    share=fix[0])
    return cfg


def packing_at(pipeline: list) -> int:
    """Where ``PackSegInputs`` stands in a training pipeline."""
    return [step['type'] for step in pipeline].index('PackSegInputs')


def save_row(work_dir: str, variant: str, row: dict) -> None:
    """Adds a variant's per-epoch results to ``WORK_DIR/variants.json``."""
    path = osp.join(work_dir, 'variants.json')
    rows = {}
    if osp.isfile(path):
        with open(path) as f:
            rows = json.load(f)
    rows[variant] = row
    with open(path, 'w') as f:
        json.dump(rows, f, indent=2)


def main():
    args = parse_args()
    run, size = compare.load_run(args.work_dir)
    for variant in args.variants:
        train_variant_stage2(run, size, variant.split('-'))
        cfg = variant_cfg(run, size, variant, args.rounds, args.epochs)
        if find_latest_checkpoint(cfg.work_dir) is not None:
            print(f'{variant}: continuing the run in {cfg.work_dir} (a '
                  'finished one is reused as it is; delete the folder to '
                  'train the variant again)', flush=True)
        RUNNERS.build(cfg).train()
        row = history(osp.join(cfg.work_dir, 'selection.json'))
        save_row(args.work_dir, variant, row)
        print(f"{variant}: mIoU {row['mIoU']}, estECE {row['estECE']}",
              flush=True)


if __name__ == '__main__':
    main()
