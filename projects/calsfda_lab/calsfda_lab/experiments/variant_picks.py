"""What each selection rule would have picked, per stage-3 variant, over
several seeds' records.

    python -m calsfda_lab.experiments.variant_picks \\
      projects/calsfda_lab/records/experiments/effnet-hard-seed{0,1,2}.json \\
      [--variants noent-lr0.003 noent-lr0.003-ceonly] [--from-epoch 2]

Reads the records ``collect_variants.py`` writes (per variant and epoch:
target val mIoU, estimated ECE and, where recorded, the true ECE and
cECE) and prints, for every variant that all the records hold, the target
val mIoU each rule selects, per seed and its mean:

* ``estECE``: the lowest estimated ECE (the method's label-free rule);
* ``estECE from N``: the same among epochs ``N`` and later only
  (``--from-epoch``; 1-based);
* ``true ECE`` / ``true cECE``: the lowest *true* ECE / class-level ECE
  (what a perfect estimate of each would select; reads the labels);
* ``best`` and ``last``.

No training: a table from committed records. An experiment, not a
benchmark: the true-error rules read the target labels.
"""
import argparse
import json
from typing import Dict, List, Optional

import numpy as np

RULES = ('estECE', 'estECE from', 'true ECE', 'true cECE', 'best', 'last')


def pick(history: dict, key: str, first: int = 1) -> Optional[float]:
    """mIoU at the lowest ``history[key]`` among epochs ``first`` (1-based)
    and later; None when the history does not record ``key``."""
    if key not in history:
        return None
    values = history[key][first - 1:]
    return history['mIoU'][first - 1 + int(np.argmin(values))]


def picks(history: dict, from_epoch: int) -> Dict[str, Optional[float]]:
    """Every rule of :data:`RULES` on one variant's per-epoch history."""
    return {
        'estECE': pick(history, 'estECE'),
        'estECE from': pick(history, 'estECE', from_epoch),
        'true ECE': pick(history, 'ECE'),
        'true cECE': pick(history, 'cECE'),
        'best': max(history['mIoU']),
        'last': history['mIoU'][-1],
    }


def table(records: List[dict], variants: Optional[List[str]],
          from_epoch: int) -> Dict[str, Dict[str, dict]]:
    """Per variant held by every record and per rule: the per-seed picks
    and their mean (None where a record lacks what the rule reads).

    Args:
        records (list[dict]): ``collect_variants.py`` outputs, one a seed.
        variants (list[str], optional): The variants to tabulate; all the
            records' common ones if None.
        from_epoch (int): The first epoch ``estECE from`` considers.

    Returns:
        dict: ``{variant: {rule: {'seeds': [...], 'mean': float|None}}}``.
    """
    common = set.intersection(*(set(r['variants']) for r in records))
    names = variants if variants is not None else sorted(common)
    missing = [name for name in names if name not in common]
    if missing:
        raise SystemExit(f'error: not in every record: {missing}; common: '
                         f'{sorted(common)}')
    result = {}
    for name in names:
        per_seed = [picks(r['variants'][name], from_epoch) for r in records]
        result[name] = {}
        for rule in RULES:
            seeds = [p[rule] for p in per_seed]
            mean = (None if None in seeds
                    else round(float(np.mean(seeds)), 2))
            result[name][rule] = dict(seeds=seeds, mean=mean)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('records', nargs='+',
                        help="collect_variants.py outputs, one per seed")
    parser.add_argument('--variants', nargs='+')
    parser.add_argument('--from-epoch', type=int, default=2)
    args = parser.parse_args()
    if args.from_epoch < 1:
        parser.error(f'--from-epoch must be >= 1, got {args.from_epoch}')
    records = []
    for path in args.records:
        with open(path) as f:
            records.append(json.load(f))
    seeds = [r.get('seed') for r in records]
    result = table(records, args.variants, args.from_epoch)
    header = [rule if rule != 'estECE from' else
              f'estECE from {args.from_epoch}' for rule in RULES]
    print(f'target val mIoU at each rule\'s pick, mean (seeds {seeds})')
    print('| variant | ' + ' | '.join(header) + ' |')
    print('|---' * (len(RULES) + 1) + '|')
    for name, rules in result.items():
        cells = []
        for rule in RULES:
            mean, per = rules[rule]['mean'], rules[rule]['seeds']
            cells.append('n/a' if mean is None else f'{mean:.2f} (' +
                         ' / '.join(f'{v:.2f}' for v in per) + ')')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
