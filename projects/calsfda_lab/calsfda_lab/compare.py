"""Cal-SFDA against baselines on the procedural benchmark, one seed.

    python -m calsfda_lab.compare --work-dir work_dirs/compare_s3 --seed 3

Stage 1 and stage 2 are trained once (the demo's sizes and recipes) and
shared; every method then starts from the same stage-2 checkpoint:

* ``source_only``: no adaptation;
* ``adabn``: target BatchNorm statistics (backbone, value head), nothing
  trained;
* ``tent``: entropy minimisation of the backbone's norm-layer affine
  parameters, one epoch per round (no pseudo-label loss);
* ``cbst``: the shipped self-training rounds with the ECE scaling off
  (``CalibratedPseudoLabeler(ece_scaling=False)``: ``s = max p``);
* ``calsfda``: the shipped stage 3 (norm-affine epoch, then decode-head
  epochs, each round), scaled down;
* ``target_supervised``: trained on the target's labels (an upper bound;
  benchmark only);
* ``calsfda_ce_only`` (an ablation, only when named in ``--methods``):
  the shipped stage 2 and stage 3 from stage 1's CE-only twin instead of
  the DiffECE model (``WORK_DIR/stage2_value_ce_only``): what DiffECE
  gives after adaptation.

Stage 1's CE-only twin (no DiffECE, otherwise the same) is trained too,
to measure what DiffECE does to the target's calibration. Both stage-2
runs (the shared one and the twin's) follow ``--stage2-recipe`` (default:
the shipped, reference recipe; the others are
:data:`calsfda_lab.stage2_recipes.STAGE2_RECIPES`). For ``cbst``
and ``calsfda`` every round's pseudo-labels are scored against the
target's true training labels (kept share and precision; benchmark only).

Each adapting method is evaluated after every epoch: target val mIoU/ECE
(labels, for reporting) and three label-free criteria on a fixed subset of
target training images -- the value head's estimated ECE, the mean
prediction entropy and the mean top-1 probability. Writes
``WORK_DIR/comparison.json``, ``comparison.md`` and ``comparison.png``
(target mIoU per checkpoint, each criterion's pick marked). The Runners'
console output goes to ``WORK_DIR/console.log``.
"""
import argparse
import json
import math
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Tuple

warnings.filterwarnings('ignore', message='.*pkg_resources is deprecated')

from mmseg_calsfda.console import QuietConsole  # noqa: E402
from mmseg_calsfda.datasets.synthetic import SHIFTS  # noqa: E402
from mmseg_calsfda.testing import demo_stages as demo  # noqa: E402

# running as calsfda_lab.compare has imported calsfda_lab: the lab's
# presets, transforms and variants are registered
from .compare_summary import pseudo_label_lines, write_report  # noqa: E402
from .experiments.pseudo_label_precision import round_quality  # noqa: E402
from .stage2_recipes import (  # noqa: E402
    STAGE2_RECIPES,
    recipe_edit,
    value_head_of,
)

METHODS = ('source_only', 'adabn', 'tent', 'cbst', 'calsfda',
           'target_supervised')
# methods run only when --methods names them: calsfda from stage 1's
# CE-only twin (the DiffECE ablation)
ABLATIONS = ('calsfda_ce_only', )
# the methods that write pseudo-labels (their rounds are scored)
PSEUDO_LABELLING = ('cbst', 'calsfda', 'calsfda_ce_only')
CRITERIA = dict(estECE='less', entropy='less', max_prob='greater',
                last=None)
# the adapting methods' schedule: rounds x epochs per round (>= 8 epochs,
# so that selection can matter)
SCHEDULE = dict(full=(2, 4), tiny=(1, 2))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--seed', type=int, required=True)
    parser.add_argument('--shift', default='default',
                        help='benchmark preset, one of '
                        f'{", ".join(SHIFTS)}: default (a colour/style '
                        'shift that BN re-estimation largely undoes), swap '
                        "(every target class takes on 60%% of a confusable "
                        "partner's look), hard (that share drawn per image "
                        'from 0-80%%), below (0-45%%, a diagnostic) '
                        '(default: %(default)s)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        help=f'any of {", ".join(METHODS + ABLATIONS)} '
                        f'(default: {" ".join(METHODS)})')
    parser.add_argument('--tiny', action='store_true',
                        help='a few images and iterations: checks the '
                        'pipeline, not the methods')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    demo.add_network_argument(parser)
    parser.add_argument(
        '--target-lr', type=float, default=None,
        help="stage-3 learning rate of every adapting method (default: the "
        "network's, mmseg_calsfda.testing.demo_stages.NETWORKS)")
    parser.add_argument(
        '--self-training-lr', type=float, default=None,
        help="stage-3 learning rate of the pseudo-labelling methods alone "
        f"({', '.join(PSEUDO_LABELLING)}: the shipped rounds and their "
        "twins); tent and target_supervised keep --target-lr's (default: "
        "--target-lr's)")
    parser.add_argument(
        '--stage2-recipe', default='shipped', choices=list(STAGE2_RECIPES),
        help="how the value head is trained (stage 2, shared by every "
        "method; calsfda_lab.stage2_recipes) (default: %(default)s)")
    args = parser.parse_args()
    check_choices(args)
    return args


def check_choices(args) -> None:
    """Unknown methods or presets end the run before anything starts."""
    unknown = [m for m in args.methods if m not in METHODS + ABLATIONS]
    if unknown:
        sys.exit(f'error: unknown method(s) {unknown}; valid: '
                 f'{", ".join(METHODS + ABLATIONS)}')
    if args.shift not in SHIFTS:
        sys.exit(f'error: unknown --shift {args.shift!r}; valid: '
                 f'{", ".join(SHIFTS)}')


def claim_work_dir(args) -> None:
    """A work directory belongs to one (seed, shift, size): reusing one of
    another run would mix their checkpoints."""
    path = osp.join(args.work_dir, 'run.json')
    run = dict(seed=args.seed, shift=args.shift, tiny=args.tiny)
    if args.network != 'resnet18':  # runs before --network had none
        run['network'] = args.network
    if args.target_lr is not None:
        run['target_lr'] = args.target_lr
    if args.self_training_lr is not None:
        run['self_training_lr'] = args.self_training_lr
    if args.stage2_recipe != 'shipped':
        run['stage2_recipe'] = args.stage2_recipe
    if osp.isfile(path):
        with open(path) as f:
            previous = json.load(f)
        if previous != run:
            sys.exit(f'error: {args.work_dir} holds a run of {previous}, '
                     f'not {run}: choose another --work-dir')
    with open(path, 'w') as f:
        json.dump(run, f)


def load_run(work_dir: str):
    """A finished run's arguments (``run.json``, as :func:`claim_work_dir`
    wrote them) and sizes, for the experiments that start from it."""
    with open(osp.join(work_dir, 'run.json')) as f:
        run = argparse.Namespace(work_dir=work_dir, device='cpu',
                                 **json.load(f))
    return run, demo.SIZES['tiny' if run.tiny else 'full']


def stage1_checkpoint(work_dir: str) -> str:
    """A finished run's stage-1 checkpoint, relative to ``work_dir`` (as
    ``demo_stages.run_value_stage`` takes it)."""
    return osp.relpath(demo.best_checkpoint(
        osp.join(work_dir, 'stage1_source')), work_dir)


# ---------------------------------------------------------------- methods
def _label_free(cfg, ckpt: str, data_dir: str, size: dict, name: str,
                bn_modules) -> dict:
    """estECE, entropy and max_prob on the estimation subset."""
    hooks = [demo.target_bn_warmup(cfg, size, data_dir, bn_modules)]
    return demo.evaluate(
        cfg, ckpt, cfg.val_dataloader, name,
        [dict(type='EstimatedECEMetric'), dict(type='ConfidenceMetric')],
        hooks=hooks)


def single_checkpoint(args, size, data_dir, stage2: str,
                      adabn: Optional[dict]) -> List[dict]:
    """source_only / adabn: the stage-2 model, evaluated once. ``adabn``:
    stage 2's own target-val evaluation with target BN statistics
    (``demo.run_value_stage``), reused; None for source_only."""
    cfg = demo.stage_config(args, size, data_dir, 'target',
                            'adabn' if adabn else 'source_only', 0,
                            lr=None, max_epochs=1)
    ckpt = osp.join(args.work_dir, stage2)
    cfg.model.update(value_head_of(ckpt))
    # the value head always gets target statistics (as stage 3 gives it);
    # adabn also the backbone's
    modules = ('backbone', 'value_head') if adabn else ('value_head', )
    report = adabn or demo.scores(
        demo.evaluate(cfg, ckpt, demo.target_dataloader(cfg, data_dir,
                                                        'val'), 'target_val'),
        'target_')
    free = _label_free(cfg, ckpt, data_dir, size, 'estimation', modules)
    return [dict(epoch=0, target_mIoU=report['target_mIoU'],
                 target_ECE=report['target_ECE'],
                 target_cECE=report['target_cECE'],
                 estECE=free['estECE'], entropy=free['entropy'],
                 max_prob=free['max_prob'])]


def _adapting_cfg(args, size, data_dir, stage2: str, name: str,
                  schedule: Optional[Tuple[int, int]] = None):
    """Stage 3 from ``stage2``; ``schedule``: (rounds, epochs per round),
    by default :data:`SCHEDULE`'s."""
    rounds, per_round = schedule or SCHEDULE['tiny' if args.tiny else 'full']
    cfg = demo.target_stage_config(args, size, data_dir, stage2, name,
                                   rounds, per_round)
    cfg.model.update(value_head_of(osp.join(args.work_dir, stage2)))
    return cfg


def tent_cfg(cfg):
    """Norm-affine parameters only, every epoch, on the entropy alone."""
    self_training = cfg.custom_hooks[0]
    self_training.epochs_per_round = 1
    self_training.lr_decay = 1.0
    cfg.model.decode_losses = [dict(type='NormalizedEntropyLoss')]
    return cfg


def cbst_cfg(cfg):
    """The same rounds, pseudo-labels scored by max p alone."""
    cfg.custom_hooks[0].pseudo_labeler.ece_scaling = False
    return cfg


def supervised_cfg(cfg):
    """Every parameter trained on the target's labels (no rounds)."""
    dataset = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(
        type='CheckedCityscapesDataset', data_root=dataset.data_root,
        data_prefix=dict(img_path='leftImg8bit/train',
                         seg_map_path='gtFine/train'),
        pipeline=dataset.pipeline)  # it loads annotations already
    cfg.model.data_preprocessor.seg_pad_val = 255
    cfg.model.decode_losses = [dict(type='CrossEntropyLoss')]
    cfg.custom_hooks = cfg.custom_hooks[1:]  # no self-training rounds
    return cfg


def self_training_lr(args) -> float:
    """The pseudo-labelling methods' stage-3 rate: ``--self-training-lr``
    when set, else every adapting method's (``--target-lr`` or the
    network's)."""
    return getattr(args, 'self_training_lr', None) or demo.target_lr(args)


def adapting(args, size, data_dir, stage2: str, name: str) -> List[dict]:
    """Trains one adapting method; its checkpoints, one per epoch."""
    if name in PSEUDO_LABELLING:
        args = argparse.Namespace(**dict(vars(args),
                                         target_lr=self_training_lr(args)))
    cfg = _adapting_cfg(args, size, data_dir, stage2, name)
    if name == 'tent':
        cfg = tent_cfg(cfg)
    elif name == 'cbst':
        cfg = cbst_cfg(cfg)
    elif name == 'target_supervised':
        cfg = supervised_cfg(cfg)
    try:
        demo.train_stage(cfg)
    except FloatingPointError as error:  # the training diverged
        print(f'{name}: {error}; its checkpoints so far are kept',
              flush=True)
    with open(osp.join(cfg.work_dir, 'selection.json')) as f:
        history = json.load(f)['history']
    return [dict(epoch=row['epoch'], target_mIoU=row['mIoU'],
                 target_ECE=row['ECE'], target_cECE=row['cECE'],
                 estECE=row['estECE'], entropy=row['entropy'],
                 max_prob=row['max_prob']) for row in history]


# ---------------------------------------------------------------- summary
def pick(checkpoints: List[dict], criterion: str) -> dict:
    """The checkpoint a label-free criterion selects; checkpoints whose
    criterion is not finite (a diverged training) are never selected
    unless every one is."""
    rule = CRITERIA[criterion]
    if rule is None:
        return checkpoints[-1]
    sign = 1 if rule == 'less' else -1
    finite = [row for row in checkpoints if math.isfinite(row[criterion])]
    return min(finite or checkpoints, key=lambda row: sign * row[criterion])


def diverged_epoch(checkpoints: List[dict]) -> Optional[int]:
    """The first epoch whose label-free estimate is not finite (the
    training diverged), or None."""
    return next((row['epoch'] for row in checkpoints
                 if not math.isfinite(row['estECE'])), None)


def summarise(checkpoints: List[dict]) -> dict:
    oracle = max(row['target_mIoU'] for row in checkpoints)
    selected = {c: pick(checkpoints, c) for c in CRITERIA}
    return dict(
        target_mIoU_last=checkpoints[-1]['target_mIoU'],
        target_mIoU_oracle=oracle,
        target_mIoU_selected={
            c: row['target_mIoU'] for c, row in selected.items()},
        selected_epoch={c: row['epoch'] for c, row in selected.items()},
        regret={c: round(oracle - row['target_mIoU'], 4)
                for c, row in selected.items()},
        diverged_at_epoch=diverged_epoch(checkpoints),
        target_ECE=selected['estECE']['target_ECE'],
        target_cECE=selected['estECE']['target_cECE'],
        checkpoints=checkpoints)


def _without_checkpoint(estimation: dict) -> dict:
    return {k: v for k, v in estimation.items() if k != 'checkpoint'}


def target_scores(stage1: dict) -> dict:
    """Target val mIoU, ECE and cECE of a stage-1 run's checkpoint."""
    return {key: stage1[f'target_{key}'] for key in ('mIoU', 'ECE', 'cECE')}


def markdown(result: dict) -> str:
    lines = [
        f"seed {result['seed']}, shift {result['shift']}: target val mIoU "
        '(ECE and cECE of the estECE-selected checkpoint)', '',
        '| method | last | oracle | estECE pick | entropy pick | '
        'max_prob pick | ECE | cECE | checkpoints |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for name, m in result['methods'].items():
        sel = m['target_mIoU_selected']
        lines.append(
            f"| {name} | {m['target_mIoU_last']:.2f} | "
            f"{m['target_mIoU_oracle']:.2f} | {sel['estECE']:.2f} | "
            f"{sel['entropy']:.2f} | {sel['max_prob']:.2f} | "
            f"{m['target_ECE']:.2f} | {m['target_cECE']:.2f} | "
            f"{len(m['checkpoints'])} |")
    est = result.get('ece_estimation')
    if est:
        lines += ['', 'The value head on target val (BN warm-up on target): '
                  f"Spearman {est['spearman']:.3f} between estimated and "
                  'true per-image class-level ECE.']
    if 'stage1' in result:
        ece, ce = result['stage1']['diffece'], result['stage1']['ce_only']
        lines += ['', 'Stage 1 on target val, DiffECE vs its CE-only twin: '
                  f"mIoU {ece['mIoU']:.2f} vs {ce['mIoU']:.2f}, ECE "
                  f"{ece['ECE']:.2f} vs {ce['ECE']:.2f}, cECE "
                  f"{ece['cECE']:.2f} vs {ce['cECE']:.2f}."]
    lines += pseudo_label_lines(result['methods'], lambda v: f'{v:.1f}')
    return '\n'.join(lines)


def plot(result: dict, path: str) -> None:
    """Target mIoU per checkpoint per method, criteria's picks marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    markers = dict(estECE='o', entropy='s', max_prob='^', last='x')
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, m) in enumerate(result['methods'].items()):
        color = f'C{i}'
        rows = m['checkpoints']
        miou = [row['target_mIoU'] for row in rows]
        if len(rows) == 1:  # no training: a level, nothing to select
            ax.axhline(miou[0], ls='--', lw=1, color=color, label=name)
            continue
        ax.plot([row['epoch'] for row in rows], miou, '-', lw=1.5,
                color=color, label=name)
        for criterion, marker in markers.items():
            ax.plot(m['selected_epoch'][criterion],
                    m['target_mIoU_selected'][criterion], marker,
                    color=color, ms=8, mfc='none')
    for criterion, marker in markers.items():
        ax.plot([], [], marker, color='grey', mfc='none',
                label=f'{criterion} pick')
    ax.set_xlabel('epoch')
    ax.set_ylabel('target val mIoU')
    ax.set_title(f"seed {result['seed']}, shift {result['shift']}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    size = demo.SIZES['tiny' if args.tiny else 'full']
    console = QuietConsole(args.work_dir)
    claim_work_dir(args)
    data_dir = osp.join(args.work_dir, 'data')
    with console.stage(f'data: seed {args.seed}, shift {args.shift}'):
        demo.generate_data(data_dir, size, args.seed, args.shift)
    with console.stage('stage 1: source pre-training (shared)'):
        stage1 = demo.run_source_stage(args, size, data_dir)
    with console.stage('stage 2: the value head (shared)'):
        estimation, adabn = demo.run_value_stage(
            args, size, data_dir, stage1['checkpoint'],
            edit_cfg=recipe_edit(args.stage2_recipe))
        stage2 = estimation['checkpoint']
    with console.stage("stage 1's CE-only twin (no DiffECE)"):
        twin = demo.run_source_stage(args, size, data_dir, ece_loss=False)
    starts = dict.fromkeys(METHODS, stage2)
    if 'calsfda_ce_only' in args.methods:
        with console.stage("stage 2 on the CE-only twin"):
            twin_estimation, _ = demo.run_value_stage(
                args, size, data_dir, twin['checkpoint'],
                'stage2_value_ce_only', recipe_edit(args.stage2_recipe))
        starts['calsfda_ce_only'] = twin_estimation['checkpoint']
    methods: Dict[str, dict] = {}
    for name in args.methods:
        with console.stage(f'method: {name}'):
            if name in ('source_only', 'adabn'):
                rows = single_checkpoint(args, size, data_dir, stage2,
                                         adabn if name == 'adabn' else None)
            else:
                rows = adapting(args, size, data_dir, starts[name], name)
        methods[name] = summarise(rows)
        if name in PSEUDO_LABELLING:
            methods[name]['pseudo_labels'] = round_quality(
                osp.join(args.work_dir, name), data_dir)
    result = dict(seed=args.seed, shift=args.shift, network=args.network,
                  target_lr=demo.target_lr(args),
                  self_training_lr=self_training_lr(args),
                  stage2_recipe=args.stage2_recipe,
                  entropy_weight=demo.network_settings(args)[
                      'entropy_weight'],
                  stage1=dict(diffece=target_scores(stage1),
                              ce_only=target_scores(twin)),
                  ece_estimation=_without_checkpoint(estimation),
                  methods=methods)
    if 'calsfda_ce_only' in args.methods:
        result['ece_estimation_ce_only'] = _without_checkpoint(
            twin_estimation)
    table = write_report(args.work_dir, 'comparison', result, markdown,
                         plot)
    print(f'\n== results ({args.work_dir}/comparison.json, .md, .png; '
          f'full logs: {console.path})\n\n{table}')
    console.close()


if __name__ == '__main__':
    main()
