"""Stage 1 with class-conditional colour shifts, then stages 2 and 3, from
a finished compare.py run's data.

    python -m calsfda_lab.experiments.source_shift work_dirs/tune_hard_s0 \\
        [--prob 0.5 --max-share 0.8 --class-prob 0.5] [--epochs 4] \\
        [--iters 1600]

Does a source model that has seen classes take on each other's colours
(``ClassConditionalColorShift`` in the stage-1 pipeline) make confident
mistakes on the target less often, so that the self-training epochs pay?
Trains stage 1 (``WORK_DIR/stage1_source_shift_<tag>``), stage 2 from it
(the run's recipe) and one round of stage 3 (``--epochs`` epochs, the
run's recipe; ``--iters``: stage-1 iterations in place of the run's,
which adds ``_it<N>`` to the names), and writes
``WORK_DIR/source_shift_<tag>.json``: source-only and AdaBN target val
mIoU, the value head's Spearman, and target val mIoU,
estimated ECE and round-0 pseudo-label precision of stage 3. An
experiment, not a benchmark: it reads target labels, and the shift it
trains with is the benchmark's own kind.
"""
import json
import os.path as osp

from mmseg.registry import RUNNERS  # noqa: E402

from mmseg_calsfda.testing import demo_stages as demo  # noqa: E402

from .. import compare  # noqa: E402
from .collect_variants import history, precision  # noqa: E402
from .value_head_shift import shift_of, shift_parser, with_shift  # noqa: E402


def parse_args():
    parser = shift_parser(__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=4,
                        help='stage-3 epochs (one round)')
    parser.add_argument('--iters', type=int, default=None,
                        help="stage-1 iterations (default: the run's)")
    return parser.parse_args()


def main():
    args = parse_args()
    run, size = compare.load_run(args.work_dir)
    data_dir = osp.join(args.work_dir, 'data')
    shift, tag = shift_of(args)
    if args.iters is not None:
        size = dict(size, iters=args.iters)
        tag += f'_it{args.iters}'
    source = demo.run_source_stage(run, size, data_dir,
                                   name=f'stage1_source_shift_{tag}',
                                   edit_cfg=with_shift(shift, 'probs'))
    estimation, adabn = demo.run_value_stage(
        run, size, data_dir, source['checkpoint'],
        f'stage2_value_source_shift_{tag}')
    cfg = compare._adapting_cfg(run, size, data_dir,
                                estimation['checkpoint'],
                                f'stage3_source_shift_{tag}',
                                (1, args.epochs))
    RUNNERS.build(cfg).train()
    result = dict(
        shift=shift, stage1_iters=size['iters'],
        source_only=source['target_mIoU'], adabn=adabn['target_mIoU'],
        spearman=estimation['spearman'],
        stage3=dict(history(osp.join(cfg.work_dir, 'selection.json')),
                    precision=precision(cfg.work_dir, data_dir)))
    with open(osp.join(args.work_dir, f'source_shift_{tag}.json'),
              'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
