"""Stage 2 again, with class-conditional colour shifts in the value head's
training pipeline, from a finished compare.py run's stage-1 checkpoint.

    python -m calsfda_lab.experiments.value_head_shift \\
        work_dirs/tune_hard_s0 --max-share 0.8 --class-prob 0.5 \\
        [--value-input backbone]

Prints the Spearman / Pearson between estimated and true per-image
class-level ECE on target val (BN warm-up on target) for the run's own
stage-2 recipe, retrained (``WORK_DIR/stage2_value_rerun``), and with the
shift (``WORK_DIR/stage2_value_shift_<tag>``), and writes both to
``WORK_DIR/value_head_shift_<tag>.json``. With ``--value-input backbone``
the value head reads the backbone's last feature map instead of the class
probabilities (stage 3 would have to say the same). An experiment, not a
benchmark: it reads the run's target val labels.
"""
import argparse
import json
import os.path as osp

from mmseg_calsfda.testing import demo_stages as demo  # noqa: E402

from .. import compare  # noqa: E402


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
    parser.add_argument('--no-baseline', action='store_true',
                        help="skip retraining the run's own stage-2 recipe")
    return parser.parse_args()


def with_shift(shift: dict, value_input: str):
    """Inserts ``ClassConditionalColorShift`` after ``LoadAnnotations``;
    points the value head at the backbone if asked."""

    def edit(cfg) -> None:
        pipeline = cfg.train_dataloader.dataset.pipeline
        at = [step['type'] for step in pipeline].index('LoadAnnotations')
        pipeline.insert(at + 1,
                        dict(type='ClassConditionalColorShift', **shift))
        if value_input == 'backbone':
            cfg.model.value_input = 'backbone'
            # the shrunk ResNet's last stage, as the decode head reads it
            head = cfg.model.value_head
            head.in_channels = cfg.model.decode_head.in_channels

    return edit


def main():
    args = parse_args()
    run, size = compare.load_run(args.work_dir)
    data_dir = osp.join(args.work_dir, 'data')
    stage1 = compare.stage1_checkpoint(args.work_dir)
    shift, tag = shift_of(args)
    if args.value_input == 'backbone':
        tag += '_backbone'
    # the baseline retrains beside the run's stage 2, never over it (the
    # run's methods started from that checkpoint)
    runs = [('stage2_value_rerun', None),
            (f'stage2_value_shift_{tag}', with_shift(shift,
                                                     args.value_input))]
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
