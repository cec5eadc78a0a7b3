"""Summarises calsfda_lab.compare runs of several seeds: mean and spread.

    python -m calsfda_lab.compare_summary work_dirs/cmp_hard_s3 \\
        work_dirs/cmp_hard_s4 work_dirs/cmp_hard_s5 \\
        --out projects/calsfda_lab/records/comparison/hard-report

Reads each run's ``comparison.json`` (one preset, distinct seeds, the same
methods) and writes ``OUT/summary.json``, ``summary.md`` and
``summary.png``: per method the target mIoU of the last checkpoint, the
oracle and each criterion's pick, each criterion's regret, and the paired
difference to ``adabn`` (ECE-selected checkpoint, seed by seed), and for
``calsfda`` the paired difference to the better of ``tent`` and ``cbst``
(each at its own ECE-selected checkpoint), as mean ± sample standard
deviation over the seeds, with min and max. Where the runs have them:
stage 1's target calibration against its CE-only twin (paired), each
round's pseudo-label kept share and precision, and -- a diagnostic that
reads the target labels -- the mIoU of the checkpoint with the lowest
*true* class-level ECE and the lowest true ECE: what a perfect estimate of
the criterion would select, so that a criterion's limit can be told apart
from its estimator's.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Callable, Dict, List

import numpy as np

CRITERIA = ('estECE', 'entropy', 'max_prob', 'last')
# the diagnostic picks: the lowest true calibration error on target val
# (checkpoint key -> name in the summary)
TRUE_CALIBRATION = dict(target_cECE='cECE', target_ECE='ECE')
# calsfda's baselines among the self-training methods
SELF_TRAINING_BASELINES = ('tent', 'cbst')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+',
                        help='work directories of calsfda_lab.compare')
    parser.add_argument('--out', required=True, help='output directory')
    return parser.parse_args()


# runs from before --network / --target-lr / the entropy weight /
# --stage2-recipe: the from-scratch ResNet-18 at its stage-3 rate, with the
# entropy term, the shipped stage 2
SETTING_DEFAULTS = dict(network='resnet18', target_lr=2.5e-4,
                        entropy_weight=1.0, stage2_recipe='shipped')


def setting(run: dict, key: str):
    """A run's setting, with the default of the runs from before it was
    recorded; runs from before --self-training-lr trained every method at
    ``target_lr``."""
    if key == 'self_training_lr':
        return run.get(key, setting(run, 'target_lr'))
    return run.get(key, SETTING_DEFAULTS.get(key))


def load_runs(run_dirs: List[str]) -> List[dict]:
    """The runs' results; one preset, distinct seeds, the same methods."""
    runs = []
    for run_dir in run_dirs:
        path = osp.join(run_dir, 'comparison.json')
        if not osp.isfile(path):
            sys.exit(f'error: {path} does not exist (has calsfda_lab.compare '
                     'finished there?)')
        with open(path) as f:
            runs.append(json.load(f))
    for key in ('shift', *SETTING_DEFAULTS, 'self_training_lr'):
        values = {setting(run, key) for run in runs}
        if len(values) > 1:
            sys.exit(f'error: the runs mix {key} values {sorted(values)}')
    seeds = [run['seed'] for run in runs]
    if len(set(seeds)) < len(seeds):
        sys.exit(f'error: a seed appears twice among {seeds}')
    methods = [list(run['methods']) for run in runs]
    for run, names in zip(runs, methods):
        if names != methods[0]:
            sys.exit(f"error: seed {run['seed']} ran {names}, seed "
                     f"{runs[0]['seed']} ran {methods[0]}")
    return runs


def spread(values: List[float]) -> dict:
    """Mean, sample standard deviation (0 for one value), min, max."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return dict(mean=float(arr.mean()), std=std, min=float(arr.min()),
                max=float(arr.max()), values=arr.tolist())


def summarise(runs: List[dict]) -> dict:
    """Per method: spread of each reported number over the seeds."""
    methods: Dict[str, dict] = {}
    for name in runs[0]['methods']:
        per_seed = [run['methods'][name] for run in runs]
        row = dict(
            last=spread([m['target_mIoU_last'] for m in per_seed]),
            oracle=spread([m['target_mIoU_oracle'] for m in per_seed]),
            selected={c: spread([m['target_mIoU_selected'][c]
                                 for m in per_seed]) for c in CRITERIA},
            regret={c: spread([m['regret'][c] for m in per_seed])
                    for c in CRITERIA})
        if 'adabn' in runs[0]['methods']:
            row['vs_adabn'] = spread([
                _pick(run, name) -
                run['methods']['adabn']['target_mIoU_last'] for run in runs])
        methods[name] = row
    baselines = [b for b in SELF_TRAINING_BASELINES if b in runs[0]['methods']]
    if 'calsfda' in methods and baselines:
        methods['calsfda']['vs_best_baseline'] = spread([
            _pick(run, 'calsfda') - max(_pick(run, b) for b in baselines)
            for run in runs])
    for name in methods:
        picks = _true_calibration_picks(runs, name)
        if picks:
            methods[name]['true_calibration_pick'] = picks
        if 'pseudo_labels' in runs[0]['methods'][name]:
            methods[name]['pseudo_labels'] = _rounds(
                [run['methods'][name]['pseudo_labels'] for run in runs])
    result = dict(shift=runs[0]['shift'],
                  seeds=[run['seed'] for run in runs], methods=methods)
    if 'target_lr' in runs[0]:
        result['target_lr'] = runs[0]['target_lr']
        result['self_training_lr'] = setting(runs[0], 'self_training_lr')
    if setting(runs[0], 'stage2_recipe') != 'shipped':
        result['stage2_recipe'] = runs[0]['stage2_recipe']
    if all('stage1' in run for run in runs):
        result['stage1'] = {
            key: dict(diffece=spread([run['stage1']['diffece'][key]
                                      for run in runs]),
                      ce_only=spread([run['stage1']['ce_only'][key]
                                      for run in runs]),
                      difference=spread([run['stage1']['diffece'][key] -
                                         run['stage1']['ce_only'][key]
                                         for run in runs]))
            for key in ('mIoU', 'ECE', 'cECE')}
    estimations = [run['ece_estimation']['spearman'] for run in runs
                   if 'ece_estimation' in run]
    if estimations:
        result['ece_spearman'] = spread(estimations)
    rows = ablation(runs)
    if rows:
        result['ablation'] = rows
    return result


def _paired(name: str, measure: str, ours: List[float],
            twin: List[float], names=('Cal-SFDA', 'plain twin')) -> dict:
    """One ablation row: both sides' spread and their paired difference
    (ours minus twin, seed by seed)."""
    return dict(ingredient=name, measure=measure, sides=list(names),
                ours=spread(ours), twin=spread(twin),
                difference=spread([a - b for a, b in zip(ours, twin)]))


def ablation(runs: List[dict]) -> List[dict]:
    """Each Cal-SFDA ingredient against its plain twin, paired by seed,
    as far as the runs have both sides: DiffECE against the CE-only stage
    1 (target val, and after stage 3 with the same recipe:
    ``calsfda_ce_only``), the ECE-scaled pseudo-labels against CBST's (per
    round kept share and precision, and the final mIoU at the estECE pick),
    the estimated ECE against the other label-free criteria (calsfda's
    regret) and the value head's Spearman."""
    methods = runs[0]['methods']
    rows = []
    if all('stage1' in run for run in runs):
        for key in ('mIoU', 'ECE', 'cECE'):
            rows.append(_paired(
                'DiffECE (stage 1)', f'stage 1 target val {key}',
                [run['stage1']['diffece'][key] for run in runs],
                [run['stage1']['ce_only'][key] for run in runs],
                ('DiffECE', 'CE only')))
    if 'calsfda' in methods and 'calsfda_ce_only' in methods:
        rows.append(_paired(
            'DiffECE (stage 1)', 'after stage 3: target val mIoU at the '
            'estECE pick', [_pick(run, 'calsfda') for run in runs],
            [_pick(run, 'calsfda_ce_only') for run in runs],
            ('DiffECE', 'CE only')))
    if 'calsfda' in methods and 'cbst' in methods:
        ours = [run['methods']['calsfda'].get('pseudo_labels') for run in runs]
        theirs = [run['methods']['cbst'].get('pseudo_labels') for run in runs]
        if all(ours) and all(theirs):
            count = min(len(r) for r in ours + theirs)
            for r in range(count):
                for key, label in (('kept_share', 'kept share %'),
                                   ('precision', 'precision %')):
                    rows.append(_paired(
                        'ECE-scaled pseudo-labels',
                        f'round {ours[0][r]["round"]} {label}',
                        [rounds[r][key] for rounds in ours],
                        [rounds[r][key] for rounds in theirs],
                        ('ECE-scaled', 'CBST (max p)')))
        rows.append(_paired(
            'ECE-scaled pseudo-labels', 'target val mIoU at the estECE pick',
            [_pick(run, 'calsfda') for run in runs],
            [_pick(run, 'cbst') for run in runs],
            ('ECE-scaled', 'CBST (max p)')))
    if 'calsfda' in methods:
        regret = [run['methods']['calsfda']['regret'] for run in runs]
        for other in CRITERIA[1:]:
            rows.append(_paired(
                'selection by estimated ECE', f'calsfda regret vs {other}',
                [r['estECE'] for r in regret], [r[other] for r in regret],
                ('estECE', other)))
    return rows


def _pick(run: dict, name: str) -> float:
    """A method's target mIoU at its ECE-selected checkpoint."""
    return run['methods'][name]['target_mIoU_selected']['estECE']


def _true_calibration_picks(runs: List[dict], name: str) -> dict:
    """Per true calibration error: spread over the seeds of the target mIoU
    at the checkpoint where it is lowest, and of the estECE pick minus it;
    empty for a method without per-checkpoint errors (one checkpoint)."""
    per_seed = [run['methods'][name].get('checkpoints', []) for run in runs]
    if any(len(rows) < 2 or any(key not in row for row in rows
                                for key in TRUE_CALIBRATION)
           for rows in per_seed):
        return {}
    picks = {}
    for key, label in TRUE_CALIBRATION.items():
        mious = [min(rows, key=lambda row: row[key])['target_mIoU']
                 for rows in per_seed]
        picks[label] = dict(
            mIoU=spread(mious),
            estECE_minus=spread([_pick(run, name) - miou
                                 for run, miou in zip(runs, mious)]))
    return picks


def _rounds(per_seed: List[List[dict]]) -> List[dict]:
    """Per round: spread over the seeds of the kept share and precision
    (the rounds every seed has)."""
    count = min(len(rows) for rows in per_seed)
    return [dict(round=per_seed[0][r]['round'],
                 **{key: spread([rows[r][key] for rows in per_seed])
                    for key in ('kept_share', 'precision')})
            for r in range(count)]


def _fmt(s: dict) -> str:
    return f"{s['mean']:.2f} ± {s['std']:.2f}"


def markdown(summary: dict) -> str:
    seeds = ', '.join(map(str, summary['seeds']))
    rates = ''
    if 'target_lr' in summary:
        rates = f" (stage-3 rate {summary['target_lr']:g}"
        if summary['self_training_lr'] != summary['target_lr']:
            rates += (', the pseudo-labelling methods '
                      f"{summary['self_training_lr']:g}")
        rates += ')'
    if 'stage2_recipe' in summary:
        rates += f", stage-2 recipe {summary['stage2_recipe']}"
    lines = [
        f"shift {summary['shift']}, seeds {seeds}{rates}: target val mIoU, "
        'mean ± sample std over the seeds', '',
        '| method | last | oracle | estECE pick | entropy pick | '
        'max_prob pick | estECE pick − adabn | regret estECE | '
        'regret entropy | regret max_prob | regret last |',
        '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for name, m in summary['methods'].items():
        sel, reg = m['selected'], m['regret']
        diff = _fmt(m['vs_adabn']) if 'vs_adabn' in m else ''
        lines.append(
            f"| {name} | {_fmt(m['last'])} | {_fmt(m['oracle'])} | "
            f"{_fmt(sel['estECE'])} | {_fmt(sel['entropy'])} | "
            f"{_fmt(sel['max_prob'])} | {diff} | {_fmt(reg['estECE'])} | "
            f"{_fmt(reg['entropy'])} | {_fmt(reg['max_prob'])} | "
            f"{_fmt(reg['last'])} |")
    if 'ece_spearman' in summary:
        sp = summary['ece_spearman']
        lines += ['', 'Spearman between estimated and true per-image '
                  f"class-level ECE on target val: {sp['mean']:.3f} ± "
                  f"{sp['std']:.3f} (min {sp['min']:.3f})."]
    cal = summary['methods'].get('calsfda', {})
    if 'vs_best_baseline' in cal:
        lines += ['', 'calsfda − the better of tent and cbst (each at its '
                  'estECE pick, paired by seed): '
                  f"{_fmt(cal['vs_best_baseline'])} (min "
                  f"{cal['vs_best_baseline']['min']:.2f})."]
    if 'stage1' in summary:
        parts = ', '.join(
            f"{key} {_fmt(v['diffece'])} vs {_fmt(v['ce_only'])} "
            f"(paired difference {_fmt(v['difference'])})"
            for key, v in summary['stage1'].items())
        lines += ['', f'Stage 1 on target val, DiffECE vs CE-only: {parts}.']
    lines += ablation_lines(summary)
    lines += true_calibration_lines(summary['methods'])
    lines += pseudo_label_lines(summary['methods'], _fmt)
    return '\n'.join(lines)


def ablation_lines(summary: dict) -> List[str]:
    """Markdown: the ablation table and the value head's Spearman per
    seed."""
    rows = summary.get('ablation')
    if not rows:
        return []
    lines = ['', 'Each ingredient against its plain twin (paired by seed; '
             'difference = ingredient − twin):', '',
             '| ingredient | measure | with it | plain twin | '
             'difference (min, max) |', '|---|---|---|---|---|']
    for row in rows:
        diff = row['difference']
        lines.append(
            f"| {row['ingredient']} | {row['measure']} | {row['sides'][0]} "
            f"{_fmt(row['ours'])} | {row['sides'][1]} {_fmt(row['twin'])} "
            f"| {_fmt(diff)} ({diff['min']:.2f}, {diff['max']:.2f}) |")
    if 'ece_spearman' in summary:
        per_seed = ', '.join(
            f'seed {seed}: {value:.3f}' for seed, value in zip(
                summary['seeds'], summary['ece_spearman']['values']))
        lines += ['', f'Value head Spearman per seed: {per_seed}.']
    return lines


def true_calibration_lines(methods: Dict[str, dict]) -> List[str]:
    """Markdown lines: per method, the mIoU at the lowest true cECE and
    ECE, and the estECE pick minus it."""
    rows = []
    for name, m in methods.items():
        if 'true_calibration_pick' in m:
            parts = [
                f"lowest {label} {_fmt(pick['mIoU'])} (estECE pick − it "
                f"{_fmt(pick['estECE_minus'])})"
                for label, pick in m['true_calibration_pick'].items()]
            rows.append(f"{name}: {', '.join(parts)}")
    if not rows:
        return []
    return ['', 'Diagnostic with the target labels, the checkpoint a perfect '
            'estimate would select (target val mIoU at the lowest true '
            'class-level ECE / ECE): ' + '; '.join(rows) + '.']


def pseudo_label_lines(methods: Dict[str, dict],
                       fmt: Callable[[Any], str]) -> List[str]:
    """Markdown lines: per method with scored pseudo-labels, each round's
    kept share and precision, each number written by ``fmt`` (one run's
    floats in ``calsfda_lab.compare``, spreads here)."""
    lines = []
    for name, m in methods.items():
        if 'pseudo_labels' in m:
            rounds = '; '.join(
                f"round {r['round']}: kept {fmt(r['kept_share'])} %, "
                f"precision {fmt(r['precision'])} %"
                for r in m['pseudo_labels'])
            lines += ['', f'{name} pseudo-labels (target train): {rounds}.']
    return lines


def plot(summary: dict, path: str) -> None:
    """Per method: the ECE-selected checkpoint's mIoU, mean ± std bar and
    every seed as a dot; the oracle as a tick."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(summary['methods'])
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(names):
        m = summary['methods'][name]
        sel = m['selected']['estECE']
        ax.bar(i, sel['mean'], yerr=sel['std'], color=f'C{i}', alpha=0.6,
               capsize=4)
        ax.plot([i] * len(sel['values']), sel['values'], 'k.', ms=6)
        ax.plot(i, m['oracle']['mean'], 'k_', ms=18)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylabel('target val mIoU (estECE pick)')
    seeds = ', '.join(map(str, summary['seeds']))
    ax.set_title(f"shift {summary['shift']}, seeds {seeds} "
                 '(bar: mean ± std; dots: seeds; dash: oracle)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(directory: str, stem: str, result: dict,
                 to_markdown: Callable[[dict], str],
                 to_plot: Callable[[dict, str], None]) -> str:
    """Writes ``stem.json``, ``stem.md`` and ``stem.png`` into ``directory``
    (``calsfda_lab.compare`` too); returns the markdown table."""
    os.makedirs(directory, exist_ok=True)
    with open(osp.join(directory, f'{stem}.json'), 'w') as f:
        json.dump(result, f, indent=2)
    table = to_markdown(result)
    with open(osp.join(directory, f'{stem}.md'), 'w') as f:
        f.write(table + '\n')
    to_plot(result, osp.join(directory, f'{stem}.png'))
    return table


def main():
    args = parse_args()
    summary = summarise(load_runs(args.runs))
    print(write_report(args.out, 'summary', summary, markdown, plot))


if __name__ == '__main__':
    main()
