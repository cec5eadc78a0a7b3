"""Stage 2 again, with class-conditional colour shifts in the value head's
training pipeline, from a finished compare.py run's stage-1 checkpoint.

    python -m calsfda_lab.experiments.value_head_shift \\
        work_dirs/tune_hard_s0 --max-share 0.8 --class-prob 0.5 \\
        [--value-input backbone] [--class-average present] \\
        [--train-split val] [--lr 1e-3] [--iters 3000] \\
        [--augment photometric] [--seed 100] [--act relu]

Prints the Spearman / Pearson between estimated and true per-image
class-level ECE on target val (BN warm-up on target) for the run's own
stage-2 recipe, retrained (``WORK_DIR/stage2_value_rerun``), and with the
shift (``WORK_DIR/stage2_value_shift_<tag>``), and writes both to
``WORK_DIR/value_head_shift_<tag>.json``. With ``--value-input backbone``
the value head reads the backbone's last feature map instead of the class
probabilities (stage 3 would have to say the same). With ``--class-average
present`` it regresses the class-level ECE averaged over the classes
present in the image (``CalSFDASegmentor(ece_class_average='present')``)
instead of over all classes (the reference); the printed Spearman still
ranks against the reference's definition (``ece_drivers.py --stage2``
ranks against both). With ``--train-split val`` it learns on the held-out
source split (``val.txt``, images stage 1 never trained on) instead of
stage 1's own training images (the shipped recipe: ``train.txt``); its
stage-2 validation is then on its training images. ``--lr`` replaces the
stage-2 config's Adam learning rate (1e-4), ``--iters`` the run's stage-2
iterations (its schedule, evaluations and checkpoints scale with them).
``--augment photometric`` adds a generic corruption of the source images
after the shift (MMSeg's ``PhotoMetricDistortion`` at its defaults, then
the lab's ``RandomBlurNoise``; the stage's pipeline already ends in a
strong colour distortion, but has no blur or noise), so that the network's
errors and calibration vary more from image to image while the value head
learns. ``--seed`` replaces the
run's seed in stage 2 alone (the value head's initialisation and the order
of its batches). ``--act relu`` puts an activation after the value head's
1x1 conv (``ECEValueNetHead(act_cfg=dict(type='ReLU'))``; the reference has
none, so that, reading class probabilities, its estimate is linear in their
pooled values). ``--prob 0`` puts no class-conditional shift in the
pipeline (the other changes alone).
An experiment, not a benchmark: it reads the run's target val labels.
"""
import argparse
import json
import os.path as osp

from mmseg_calsfda.testing import demo_stages as demo  # noqa: E402

from .. import compare  # noqa: E402
from ..stage2_recipes import ACTIVATIONS, AUGMENTS, with_shift  # noqa: E402


def shift_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of the experiments that insert the transform: a
    finished compare.py run and the transform's settings."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('work_dir', help='a finished calsfda_lab.compare run')
    parser.add_argument('--prob', type=float, default=0.5)
    parser.add_argument('--max-share', type=float, default=0.8)
    parser.add_argument('--class-prob', type=float, default=0.5)
    return parser


def shift_of(args) -> tuple:
    """``(transform settings, tag naming the runs)`` from the arguments."""
    shift = dict(prob=args.prob, max_share=args.max_share,
                 class_prob=args.class_prob)
    return shift, '_'.join(f'{v:g}' for v in shift.values())


def parse_args():
    parser = shift_parser(__doc__.split('\n')[0])
    parser.add_argument('--value-input', choices=['probs', 'backbone'],
                        default='probs')
    parser.add_argument('--class-average', choices=['all', 'present'],
                        default='all',
                        help="what the value head regresses: the "
                        "class-level ECE averaged over all classes (the "
                        "reference) or over the image's present classes")
    parser.add_argument('--train-split', choices=['train', 'val'],
                        default='train',
                        help="the source split the value head learns on: "
                        "stage 1's training images or the held-out ones")
    parser.add_argument('--lr', type=float,
                        help="the value head's learning rate (default: "
                        "the stage-2 config's)")
    parser.add_argument('--iters', type=int,
                        help="stage 2's iterations (default: the run's)")
    parser.add_argument('--augment', choices=list(AUGMENTS),
                        default='none',
                        help="a corruption of the source images in stage 2's "
                        'pipeline (after the shift)')
    parser.add_argument('--act', choices=list(ACTIVATIONS),
                        help="an activation after the value head's 1x1 conv")
    parser.add_argument('--seed', type=int,
                        help="stage 2's random seed (default: the run's)")
    parser.add_argument('--no-baseline', action='store_true',
                        help="skip retraining the run's own stage-2 recipe")
    args = parser.parse_args()
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    return args


def main():
    args = parse_args()
    run, size = compare.load_run(args.work_dir)
    data_dir = osp.join(args.work_dir, 'data')
    stage1 = compare.stage1_checkpoint(args.work_dir)
    shift, tag = shift_of(args)
    if args.value_input == 'backbone':
        tag += '_backbone'
    if args.class_average != 'all':
        tag += f'_{args.class_average}'
    if args.train_split != 'train':
        tag += f'_on-{args.train_split}'
    if args.lr is not None:
        tag += f'_lr{args.lr:g}'
    if args.augment != 'none':
        tag += f'_{args.augment}'
    if args.act is not None:
        tag += f'_{args.act}'
    if args.seed is not None:
        tag += f'_seed{args.seed}'
    if args.iters is not None:
        tag += f'_it{args.iters}'
        size = dict(size, value_iters=args.iters)
    # the baseline retrains beside the run's stage 2, never over it (the
    # run's methods started from that checkpoint)
    runs = [('stage2_value_rerun', None),
            (f'stage2_value_shift_{tag}',
             with_shift(shift, args.value_input, args.class_average,
                        args.train_split, args.lr, args.augment, args.seed,
                        args.act))]
    rows = {}
    for name, edit in runs[args.no_baseline:]:
        rows[name], _ = demo.run_value_stage(run, size, data_dir, stage1,
                                             name, edit)
        print(f"{name}: Spearman {rows[name]['spearman']:.3f}, Pearson "
              f"{rows[name]['pearson']:.3f}", flush=True)
    with open(osp.join(args.work_dir, f'value_head_shift_{tag}.json'),
              'w') as f:
        json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
