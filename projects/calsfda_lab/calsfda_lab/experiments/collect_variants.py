"""Gathers one compare.py run's experiments into one JSON file.

    python -m calsfda_lab.experiments.collect_variants \\
        work_dirs/tune_hard_s0 \\
        projects/calsfda_lab/records/experiments/hard-seed0.json

Per stage-3 variant (``stage3_variants.py``; ``var_*`` directories are an
earlier draft's) the target val mIoU, estimated ECE and true ECE / cECE
after every epoch
and the pseudo-labels' precision per round (against the benchmark's target
training labels),
the shipped ``calsfda`` run's first round beside them, the value-head
Spearman of ``value_head_shift.py`` runs, and the run's source-only and
AdaBN mIoU. Entries already in OUT (e.g. from an earlier machine's run of
the same seed and preset) are kept unless the work dir has them anew, and
so are OUT's other keys (e.g. a ``note`` on how the variants were named).
"""
import argparse
import glob
import json
import os.path as osp
from typing import List, Optional

from .pseudo_label_precision import overall_precision, round_confusions


def history(selection: str, epochs: Optional[int] = None) -> dict:
    """Target val mIoU, estimated ECE and the true ECE and class-level ECE
    per epoch (the first ``epochs``) of a stage-3 run's ``selection.json``
    (the true errors where it records them)."""
    with open(selection) as f:
        rows = json.load(f)['history'][:epochs]
    return {key: [round(r[key], 2) for r in rows]
            for key in ('mIoU', 'estECE', 'ECE', 'cECE')
            if all(key in r for r in rows)}


def precision(run_dir: str, data_dir: str) -> List[float]:
    """Per round, the share of a stage-3 run's kept pixels whose
    pseudo-label is their true class."""
    return [round(overall_precision(counts), 4)
            for _, counts in round_confusions(run_dir, data_dir)]


def previous(out: str, run: dict) -> dict:
    """What ``out`` holds already; an error if it is another run's."""
    if not osp.isfile(out):
        return {}
    with open(out) as f:
        earlier = json.load(f)
    keys = ('seed', 'shift', 'tiny')
    if any(earlier.get(k) != run[k] for k in keys):
        raise SystemExit(
            f'error: {out} holds seed/shift/tiny '
            f'{[earlier.get(k) for k in keys]}, the work dir '
            f'{[run[k] for k in keys]}: choose another OUT')
    return earlier


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='a finished calsfda_lab.compare run')
    parser.add_argument('out', help='the JSON file to write')
    parser.add_argument('--epochs-per-round', type=int, default=4)
    args = parser.parse_args()
    with open(osp.join(args.work_dir, 'run.json')) as f:
        result = dict(json.load(f), variants={}, value_head_shift={})
    earlier = previous(args.out, result)
    with open(osp.join(args.work_dir, 'comparison.json')) as f:
        comparison = json.load(f)
    methods = comparison['methods']
    if 'ece_estimation' in comparison:  # the run's own stage 2
        result['value_head_shift']['stage2_value (compare.py)'] = {
            k: comparison['ece_estimation'][k]
            for k in ('spearman', 'pearson')}
    result['baselines'] = {name: methods[name]['target_mIoU_last']
                           for name in ('source_only', 'adabn')
                           if name in methods}
    shipped = osp.join(args.work_dir, 'calsfda', 'selection.json')
    if osp.isfile(shipped):
        result['variants']['shipped (calsfda, round 0)'] = history(
            shipped, args.epochs_per_round)
    for path in sorted(glob.glob(osp.join(args.work_dir, 'var*_*',
                                          'selection.json'))):
        prefix, name = osp.basename(osp.dirname(path)).split('_', 1)
        name = name if prefix == 'variant' else f'{name} (draft)'
        result['variants'][name] = dict(
            history(path), precision=precision(
                osp.dirname(path), osp.join(args.work_dir, 'data')))
    for path in sorted(glob.glob(osp.join(args.work_dir,
                                          'value_head_shift_*.json'))):
        with open(path) as f:
            for name, row in json.load(f).items():
                result['value_head_shift'][name] = {
                    k: row[k] for k in ('spearman', 'pearson')}
    for key in ('variants', 'value_head_shift'):
        result[key] = {**earlier.get(key, {}), **result[key]}
    # what the work dir does not produce (e.g. a hand-written 'note') stays
    result = {**earlier, **result}
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
