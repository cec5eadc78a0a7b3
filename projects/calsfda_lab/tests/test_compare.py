"""calsfda_lab.compare: baselines and selection criteria on one seed."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine import Config
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_calsfda.engine.hooks import SelfTrainingHook

from lab_utils import run_lab


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """One --tiny compare.py run, shared by the tests of this module."""
    work_dir = tmp_path_factory.mktemp('compare')
    res = run_lab('compare', *['--tiny', '--seed',
                   '0', '--work-dir', str(work_dir), '--methods', 'adabn',
                   'cbst', 'target_supervised', 'calsfda_ce_only'],
                  timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return work_dir


@pytest.mark.slow
def test_compare_tiny_writes_every_criterion(tiny_run):
    tmp_path = tiny_run
    result = json.loads((tmp_path / 'comparison.json').read_text())
    assert result['seed'] == 0 and result['shift'] == 'default'
    assert result['network'] == 'resnet18'
    assert result['entropy_weight'] == 1.0  # the from-scratch network's
    assert list(result['methods']) == ['adabn', 'cbst', 'target_supervised',
                                       'calsfda_ce_only']
    # the value head's ranking of target val images is kept beside them
    assert {'spearman', 'pearson', 'mean_true_ECE'} <= set(
        result['ece_estimation'])
    for name, method in result['methods'].items():
        rows = method['checkpoints']
        assert len(rows) == (1 if name == 'adabn' else 2)
        assert set(method['target_mIoU_selected']) == {
            'estECE', 'entropy', 'max_prob', 'last'}
        oracle = max(row['target_mIoU'] for row in rows)
        assert method['target_mIoU_oracle'] == oracle
        assert method['target_mIoU_last'] == rows[-1]['target_mIoU']
        by_ece = min(rows, key=lambda row: row['estECE'])
        assert method['target_mIoU_selected']['estECE'] == \
            by_ece['target_mIoU']
        by_prob = max(rows, key=lambda row: row['max_prob'])
        assert method['regret']['max_prob'] == round(
            oracle - by_prob['target_mIoU'], 4)
        for row in rows:
            assert 0 <= row['entropy'] <= 100
            assert 0 <= row['max_prob'] <= 100
    # stage 1 and its CE-only twin, each on target val
    for twin in ('diffece', 'ce_only'):
        assert set(result['stage1'][twin]) == {'mIoU', 'ECE', 'cECE'}
    assert result['stage1']['ce_only'] != result['stage1']['diffece']
    assert list((tmp_path / 'stage1_ce_only').glob('best_*.pth'))
    # cbst's one round of pseudo-labels, scored; the other methods have none
    rounds = result['methods']['cbst']['pseudo_labels']
    assert [r['round'] for r in rounds] == [0]
    assert 0 < rounds[0]['kept_share'] <= 100
    assert 0 <= rounds[0]['precision'] <= 100
    assert 'pseudo_labels' not in result['methods']['target_supervised']
    # the CBST run scored pseudo-labels without the ECE scaling
    cfg = (tmp_path / 'cbst').glob('*/vis_data/config.py')
    assert 'ece_scaling=False' in next(cfg).read_text()
    assert (tmp_path / 'comparison.png').stat().st_size > 0
    assert (tmp_path / 'comparison.md').read_text().count('\n| ') == 5
    # the DiffECE ablation: stage 2 and stage 3 from the CE-only twin
    ce_only_cfg = next((tmp_path / 'calsfda_ce_only').glob(
        '*/vis_data/config.py')).read_text()
    assert 'stage2_value_ce_only' in ce_only_cfg
    assert 'spearman' in result['ece_estimation_ce_only']
    assert result['methods']['calsfda_ce_only']['pseudo_labels']


def test_bad_method_shift_and_reused_work_dir(tmp_path):
    res = run_lab('compare', *['--seed', '0',
                   '--work-dir', str(tmp_path), '--methods', 'dann'])
    assert res.returncode != 0
    assert "unknown method(s) ['dann']; valid: source_only, adabn" in \
        res.stderr
    res = run_lab('compare', *['--seed', '0',
                   '--work-dir', str(tmp_path), '--shift', 'night'])
    assert "unknown --shift 'night'; valid: default" in res.stderr
    (tmp_path / 'run.json').write_text(json.dumps(
        dict(seed=1, shift='default', tiny=True)))
    res = run_lab('compare', *['--tiny', '--seed',
                   '0', '--work-dir', str(tmp_path)])
    assert res.returncode != 0
    assert 'holds a run of' in res.stderr and 'choose another' in res.stderr
    assert not (tmp_path / 'data').exists()


def test_stage3_variants_refuses_unknown_changes(tmp_path):
    res = run_lab('experiments.stage3_variants', tmp_path, '--variants',
                  'noent-dropout')
    assert res.returncode != 0
    assert "unknown change(s) ['dropout'] in 'noent-dropout'; valid: " \
        "shipped, noent" in res.stderr
    res = run_lab('experiments.stage3_variants', tmp_path, '--variants',
                  'gtmask-cb50-gtfix50')
    assert res.returncode != 0
    assert "'gtmask-cb50-gtfix50' names more than one true-label change " \
        "(gtmask, gtfix50)" in res.stderr
    res = run_lab('experiments.stage3_variants', tmp_path, '--variants',
                  'vit0-vlr0.001')
    assert res.returncode != 0
    assert "unknown change(s) ['vit0'] in 'vit0-vlr0.001'" in res.stderr


@pytest.mark.slow
def test_stage3_variants_diagnostics(tiny_run):
    """lr0 changes nothing after the norm-affine epoch, srcbn keeps the
    source BN statistics; gtmask gives the kept pixels their true class;
    fullnet trains the backbone's convs; ccaug shifts the training crops;
    trueece changes the scores' scaling, not the predictions."""
    res = run_lab('experiments.stage3_variants', tiny_run, '--variants',
                  'lr0-srcbn', 'lr0-srcbn-trueece', 'gtmask-fullnet-ccaug',
                  '--rounds', '1', '--epochs', '2', timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    rows = json.loads((tiny_run / 'variants.json').read_text())
    assert set(rows) == {'lr0-srcbn', 'lr0-srcbn-trueece',
                         'gtmask-fullnet-ccaug'}

    def summary(name):
        return json.loads((tiny_run / f'variant_{name}' / 'pseudo_labels' /
                           'round_0' / 'summary.json').read_text())

    estimated, true = summary('lr0-srcbn'), summary('lr0-srcbn-trueece')
    assert estimated['predicted_pixels'] == true['predicted_pixels']
    assert estimated['thresholds'] != true['thresholds']
    assert len(rows['lr0-srcbn']['mIoU']) == 2
    assert rows['lr0-srcbn']['mIoU'][0] == rows['lr0-srcbn']['mIoU'][1]
    assert rows['lr0-srcbn']['estECE'][0] == rows['lr0-srcbn']['estECE'][1]
    variant = tiny_run / 'variant_gtmask-fullnet-ccaug'
    cfg = Config.fromfile(next(variant.glob('*/vis_data/config.py')))
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert steps[steps.index('LoadAnnotations') + 1] == \
        'ClassConditionalColorShift'
    labels = list((variant / 'pseudo_labels' / 'round_0').rglob('*.png'))
    gt_root = tiny_run / 'data' / 'cityscapes' / 'gtFine' / 'train'
    kept_total = 0
    for path in labels:
        label = np.array(Image.open(path))
        rel = path.relative_to(variant / 'pseudo_labels' / 'round_0')
        gt = np.array(Image.open(gt_root / rel.parent / (
            rel.stem + '_gtFine_labelTrainIds.png')))
        kept = label < 19
        np.testing.assert_array_equal(label[kept], gt[kept])
        kept_total += kept.sum()
    assert labels and kept_total > 0

    def weight(path, key='backbone.layer1.0.conv1.weight'):
        state = torch.load(path, map_location='cpu')['state_dict']
        return state[key]

    stage2 = tiny_run / 'stage2_value' / 'iter_2.pth'
    lr0 = tiny_run / 'variant_lr0-srcbn' / 'epoch_2.pth'
    assert not torch.equal(weight(stage2), weight(variant / 'epoch_2.pth'))
    assert torch.equal(weight(stage2), weight(lr0))
    for key in ('backbone.stem.1.running_mean',
                'backbone.layer4.0.bn2.running_var'):
        assert torch.equal(weight(stage2, key), weight(lr0, key))
        # without srcbn the warm-up moves them
        assert not torch.equal(weight(stage2, key),
                               weight(variant / 'epoch_2.pth', key))
    # a finished variant is reused, and the console says so
    again = run_lab('experiments.stage3_variants', tiny_run, '--variants',
                    'lr0-srcbn', '--rounds', '1', '--epochs', '2',
                    timeout=900)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert 'lr0-srcbn: continuing the run in' in again.stdout
    assert json.loads((tiny_run / 'variants.json').read_text()) == rows


@pytest.mark.slow
def test_value_head_shift_puts_the_transform_in_stage_2(tiny_run, tmp_path):
    res = run_lab('experiments.value_head_shift', tiny_run, '--no-baseline',
                  '--prob', '1', '--iters', '3', '--augment', 'photometric',
                  '--act', 'relu', timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    tag = '1_0.8_0.5_photometric_relu_it3'
    rows = json.loads((tiny_run / f'value_head_shift_{tag}.json').read_text())
    assert list(rows) == [f'stage2_value_shift_{tag}']
    row = rows[f'stage2_value_shift_{tag}']
    assert 'spearman' in row
    # --iters: the run's stage 2 (2 iterations at --tiny) runs 3
    assert row['checkpoint'].endswith('iter_3.pth')
    cfg = next((tiny_run / f'stage2_value_shift_{tag}').glob(
        '*/vis_data/config.py')).read_text()
    assert "type='ClassConditionalColorShift'" in cfg and 'prob=1' in cfg
    assert "type='PhotoMetricDistortion'" in cfg
    assert "type='RandomBlurNoise'" in cfg
    assert 'max_iters=3' in cfg
    # the ReLU has no weights: the experiments that read the checkpoint
    # build its head from the config saved in it, and measure what stage 2
    # measured
    from calsfda_lab import compare
    run, size = compare.load_run(str(tiny_run))
    ckpt = f'stage2_value_shift_{tag}/iter_3.pth'
    stage3 = compare._adapting_cfg(run, size, str(tiny_run / 'data'), ckpt,
                                   'unused')
    assert stage3.model.value_head.act_cfg == dict(type='ReLU')
    out = tmp_path / 'drivers.json'
    res = run_lab('experiments.ece_drivers', tiny_run, '--out', out,
                  '--stage2', ckpt, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    drivers = json.loads(out.read_text())
    assert drivers['spearman']['cECE_all']['estECE'] == pytest.approx(
        row['spearman'], abs=1e-3)
    assert 100 * np.mean([r['estECE'] for r in drivers['images']]) == \
        pytest.approx(row['mean_estimated_ECE'], abs=1e-3)


def test_value_head_shift_edit_sets_what_the_value_head_regresses():
    """``--class-average present`` changes what stage 2 regresses,
    ``--train-split val`` the source images it learns on, ``--lr`` its
    learning rate, ``--augment`` adds corruptions after the shift, ``--seed``
    the stage's seed; ``--prob 0`` leaves the pipeline as it is; the
    defaults change only the pipeline."""
    from calsfda_lab.experiments.value_head_shift import with_shift
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]

    def edited(shift, **kwargs):
        cfg = Config(dict(model=dict(type='CalSFDASegmentor'),
                          train_dataloader=dict(dataset=dict(
                              ann_file='train.txt',
                              pipeline=[dict(s) for s in pipeline])),
                          optim_wrapper=dict(optimizer=dict(lr=1e-4))))
        with_shift(shift, 'probs', **kwargs)(cfg)
        return cfg

    shift = dict(prob=0.5, max_share=0.8, class_prob=0.5)
    cfg = edited(shift)
    assert [s['type'] for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations',
        'ClassConditionalColorShift', 'PackSegInputs']
    assert 'ece_class_average' not in cfg.model
    assert cfg.train_dataloader.dataset.ann_file == 'train.txt'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    cfg = edited(dict(shift, prob=0.0), class_average='present',
                 train_split='val', lr=3e-3)
    assert cfg.optim_wrapper.optimizer.lr == 3e-3
    assert cfg.train_dataloader.dataset.pipeline == pipeline
    assert cfg.model.ece_class_average == 'present'
    assert cfg.train_dataloader.dataset.ann_file == 'val.txt'
    assert 'randomness' not in cfg
    # --augment photometric: the corruptions after the shift; --seed: the
    # stage's seed alone
    cfg = edited(shift, augment='photometric', seed=7)
    assert [s['type'] for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations',
        'ClassConditionalColorShift', 'PhotoMetricDistortion',
        'RandomBlurNoise', 'PackSegInputs']
    assert cfg.randomness.seed == 7
    cfg = edited(dict(shift, prob=0.0), augment='photometric')
    assert [s['type'] for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'PhotoMetricDistortion',
        'RandomBlurNoise', 'PackSegInputs']


def test_stage2_recipes_edit_the_value_stage_and_are_recorded(tmp_path):
    """--stage2-recipe: 'shipped' edits nothing, the others are
    value_head_shift's edits without the class-conditional shift; an
    unknown name is refused; run.json records a non-shipped recipe, so a
    work dir of one recipe is not reused for another."""
    from calsfda_lab import compare
    from calsfda_lab.stage2_recipes import STAGE2_RECIPES, recipe_edit
    assert recipe_edit('shipped') is None
    cfg = Config(dict(model=dict(type='CalSFDASegmentor'),
                      train_dataloader=dict(dataset=dict(
                          ann_file='train.txt',
                          pipeline=[dict(type='LoadImageFromFile'),
                                    dict(type='LoadAnnotations'),
                                    dict(type='PackSegInputs')])),
                      optim_wrapper=dict(optimizer=dict(lr=1e-4))))
    recipe_edit('present-photometric')(cfg)
    assert [s['type'] for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'PhotoMetricDistortion',
        'RandomBlurNoise', 'PackSegInputs']
    assert cfg.model.ece_class_average == 'present'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    with pytest.raises(ValueError, match="unknown stage-2 recipe 'x'"):
        recipe_edit('x')
    assert set(STAGE2_RECIPES) >= {'shipped', 'present',
                                   'present-photometric'}

    def claim(recipe):
        args = SimpleNamespace(work_dir=str(tmp_path), seed=3,
                               shift='default', tiny=True,
                               network='efficientnet_lite0', target_lr=None,
                               self_training_lr=None, stage2_recipe=recipe)
        compare.claim_work_dir(args)
        return json.loads((tmp_path / 'run.json').read_text())

    assert 'stage2_recipe' not in claim('shipped')
    (tmp_path / 'run.json').unlink()
    assert claim('present-photometric')['stage2_recipe'] == \
        'present-photometric'
    with pytest.raises(SystemExit, match='holds a run of'):
        claim('shipped')


@pytest.mark.slow
def test_collect_variants_keeps_earlier_entries(tiny_run, tmp_path):
    out = tmp_path / 'seed0.json'
    earlier = dict(seed=0, shift='default', tiny=True,
                   variants={'lr5': {'mIoU': [1.0], 'estECE': [2.0]}},
                   value_head_shift={}, note='lr5 ran on another machine')
    out.write_text(json.dumps(earlier))
    cmd = [
           str(tiny_run), str(out)]
    res = run_lab('experiments.collect_variants', *cmd)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result['variants']['lr5'] == earlier['variants']['lr5']
    assert result['note'] == earlier['note']
    assert set(result['baselines']) == {'adabn'}
    assert 'stage2_value (compare.py)' in result['value_head_shift']
    # another seed's file is never merged into
    out.write_text(json.dumps(dict(earlier, seed=1)))
    res = run_lab('experiments.collect_variants', *cmd)
    assert res.returncode != 0
    assert 'holds seed/shift/tiny [1, ' in res.stderr
    assert json.loads(out.read_text())['seed'] == 1
    if not (tiny_run / 'variant_gtmask-fullnet-ccaug').is_dir():
        pytest.skip('test_stage3_variants_diagnostics has not run')
    # the kept pixels of gtmask carry their true class: precision 1
    assert result['variants']['gtmask-fullnet-ccaug']['precision'] == [1.0]
    assert {'mIoU', 'estECE', 'ECE', 'cECE'} <= set(
        result['variants']['gtmask-fullnet-ccaug'])
    assert 0 <= result['variants']['lr0-srcbn']['precision'][0] <= 1


@pytest.mark.slow
def test_ranking_precision_nests_the_shares(tiny_run, tmp_path):
    out = tmp_path / 'ranking.json'
    res = run_lab('experiments.ranking_precision', tiny_run, '--out', out,
                  timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    table = json.loads(out.read_text())['rankings']
    assert set(table) == {'max_p', 'estECE', 'trueECE', 'trueERR', 'margin',
                          'neg_entropy', 'flip', 'smooth', 'proto', 'agree',
                          'regions'}
    for name, row in table.items():
        low, high = row['share 0.15'], row['share 0.5']
        # the 0.15 pixels are among the 0.5 ones; the band is the rest
        assert row['band 0.15-0.5']['pixels'] == \
            high['pixels'] - low['pixels'] > 0, name
        for cell in row.values():
            assert 0 <= cell['overall'] <= 1 and 0 <= cell['class_mean'] <= 1
    # --stage2 screens another stage-2 model; a missing one is named
    res = run_lab('experiments.ranking_precision', tiny_run, '--stage2',
                  'stage2_value/missing.pth')
    assert res.returncode != 0
    assert 'no stage-2 checkpoint stage2_value/missing.pth' in res.stderr


@pytest.mark.slow
def test_source_shift_trains_all_three_stages(tiny_run):
    res = run_lab('experiments.source_shift', tiny_run, '--prob', '1',
                  '--epochs', '2', '--iters', '6', timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    result = json.loads(
        (tiny_run / 'source_shift_1_0.8_0.5_it6.json').read_text())
    assert set(result) == {'shift', 'stage1_iters', 'source_only', 'adabn',
                           'spearman', 'stage3'}
    assert result['stage1_iters'] == 6
    assert len(result['stage3']['mIoU']) == 2
    assert len(result['stage3']['precision']) == 1
    # the shift is in the new stage 1 only; stages 2 and 3 start from it
    cfg = Config.fromfile(next((
        tiny_run / 'stage1_source_shift_1_0.8_0.5_it6').glob(
            '*/vis_data/config.py')))
    assert cfg.train_cfg.max_iters == 6
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'ClassConditionalColorShift' in steps
    own = Config.fromfile(next((tiny_run / 'stage1_source').glob(
        '*/vis_data/config.py')))
    assert 'ClassConditionalColorShift' not in [
        t['type'] for t in own.train_dataloader.dataset.pipeline]
    stage2 = Config.fromfile(next((
        tiny_run / 'stage2_value_source_shift_1_0.8_0.5_it6').glob(
            '*/vis_data/config.py')))
    assert 'stage1_source_shift_1_0.8_0.5_it6' in stage2.load_from
    stage3 = Config.fromfile(next((
        tiny_run / 'stage3_source_shift_1_0.8_0.5_it6').glob(
            '*/vis_data/config.py')))
    assert 'stage2_value_source_shift_1_0.8_0.5_it6' in stage3.load_from


@pytest.mark.slow
def test_ece_drivers_reproduce_the_value_head_spearman(tiny_run, tmp_path):
    out = tmp_path / 'drivers.json'
    # --stage2 named explicitly (the run's own): the same model as compare.py
    res = run_lab('experiments.ece_drivers', tiny_run, '--out', out,
                  '--stage2', 'stage2_value/iter_2.pth', timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    result = json.loads(out.read_text())
    compared = json.loads((tiny_run / 'comparison.json').read_text())
    # the same images, model and BN statistics as compare.py's own measure
    # (with 4 val images the Spearman alone moves in steps of 0.2)
    estimation = compared['ece_estimation']
    assert result['spearman']['cECE_all']['estECE'] == pytest.approx(
        estimation['spearman'], abs=1e-3)
    rows = result['images']
    assert 100 * np.mean([r['estECE'] for r in rows]) == pytest.approx(
        estimation['mean_estimated_ECE'], abs=1e-3)
    assert 100 * np.mean([r['cECE_all'] for r in rows]) == pytest.approx(
        estimation['mean_true_ECE'], abs=1e-2)
    hardness = result['spearman']['error_rate']
    assert set(hardness) == {'estECE', 'one_minus_max_p', 'entropy',
                             'n_predicted', 'n_reaching_0.3',
                             'soft_presence', 'n_true', 'cECE_all',
                             'cECE_present'}
    for row in result['images']:
        # 'all' divides the present classes' ECE sum by C, 'present' by
        # their number
        assert row['cECE_all'] * 19 == pytest.approx(
            row['cECE_present'] * row['n_true'], rel=1e-4, abs=1e-6)
        assert 0 <= row['error_rate'] <= 1
        assert 1 <= row['n_true'] <= 19 and 0 <= row['n_predicted'] <= 19
        # entropy and max p of the same probabilities: H >= -log(max p)
        assert row['entropy'] >= -np.log(1 - row['one_minus_max_p']) - 1e-5
        # each class's peak is at least its probability at any one pixel,
        # where the classes sum to 1; a class reaching 0.3 adds >= 0.3
        assert 1 - 1e-5 <= row['soft_presence'] <= 19
        assert 0.3 * row['n_reaching_0.3'] <= row['soft_presence'] + 1e-5


@pytest.mark.slow
def test_stage3_variant_configs(tiny_run, tmp_path):
    """lr<decimal> sets the stage-3 rate; ls<decimal> the SCE's label
    smoothing and ceonly makes it a plain CE; nolocal turns the per-image
    local selection off (and only that);
    cb50 raises the class-balanced share; both compose; photo distorts
    the training crops just before packing; mix wraps the pseudo-label
    dataset in MultiImageMixDataset with ClassMix."""
    from calsfda_lab import compare
    from calsfda_lab.experiments import stage3_variants
    run, size = compare.load_run(str(tiny_run))

    def labeler(variant):
        cfg = stage3_variants.variant_cfg(run, size, variant, 1, 2)
        return cfg.custom_hooks[0].pseudo_labeler

    def rate(variant):
        cfg = stage3_variants.variant_cfg(run, size, variant, 1, 2)
        return cfg.optim_wrapper.optimizer.lr

    assert rate('lr0.001') == 0.001 != rate('shipped')
    assert rate('noent-lr.25') == 0.25 and rate('lr5') == 5e-5

    def sce(variant):
        cfg = stage3_variants.variant_cfg(run, size, variant, 1, 2)
        return [loss for loss in cfg.model.decode_losses
                if loss['type'] == 'SymmetricCELoss'][0]

    assert sce('shipped').get('label_smoothing', 0.0) == 0.0
    assert sce('ls0.1')['label_smoothing'] == 0.1
    smoothed_ce = sce('ceonly-ls0.2')
    assert (smoothed_ce['alpha'], smoothed_ce['beta'],
            smoothed_ce['label_smoothing']) == (1.0, 0.0, 0.2)
    assert (sce('shipped')['alpha'], sce('shipped')['beta']) == (0.1, 1.0)
    # imgece starts from the image-level-ECE value head's stage 2
    assert 'stage2_value_imgece/iter_' in stage3_variants.variant_cfg(
        run, size, 'ceonly-imgece', 1, 2).load_from
    # present starts from the present-class value head's stage 2
    assert 'stage2_value_present/iter_' in stage3_variants.variant_cfg(
        run, size, 'present-lr0.0003', 1, 2).load_from
    assert stage3_variants.stage2_dir(['imgece', 'present']) == \
        'stage2_value_imgece_present'
    # vlr<rate> starts from a stage 2 at that learning rate
    assert 'stage2_value_lr0.001/iter_' in stage3_variants.variant_cfg(
        run, size, 'ceonly-vlr0.001', 1, 2).load_from
    assert 'stage2_value_imgece_lr0.01/iter_' in stage3_variants.variant_cfg(
        run, size, 'imgece-vlr0.01', 1, 2).load_from
    # vit<N>: from a stage 2 of N iterations, whatever the run's
    assert stage3_variants.variant_cfg(
        run, size, 'vlr0.001-vit30', 1, 2).load_from.endswith(
            'stage2_value_lr0.001_it30/iter_30.pth')
    assert '/stage2_value/iter_' in stage3_variants.variant_cfg(
        run, size, 'ceonly', 1, 2).load_from
    assert stage3_variants.variant_cfg(
        run, size, 'notent', 1, 2).custom_hooks[0].tent_first_epoch is False
    assert stage3_variants.variant_cfg(
        run, size, 'shipped', 1, 2).custom_hooks[0].get(
            'tent_first_epoch', True) is True

    shipped, changed = labeler('shipped'), labeler('nolocal-cb50')
    assert shipped.local_prop > 0 and shipped.local_prop_step > 0
    assert changed.local_prop == 0 and changed.local_prop_step == 0
    assert changed.cb_prop == 0.5 != shipped.cb_prop
    assert {k: v for k, v in changed.items()
            if k not in ('local_prop', 'local_prop_step', 'cb_prop')} == \
        {k: v for k, v in shipped.items()
         if k not in ('local_prop', 'local_prop_step', 'cb_prop')}

    def steps(variant):
        cfg = stage3_variants.variant_cfg(run, size, variant, 1, 2)
        return [t['type'] for t in cfg.train_dataloader.dataset.pipeline]

    plain = steps('shipped')
    assert 'PhotoMetricDistortion' not in plain
    assert steps('photo') == plain[:-1] + ['PhotoMetricDistortion',
                                           'PackSegInputs']
    # mix: each crop is cropped alone, then mixed with another, then packed
    mixed = stage3_variants.variant_cfg(run, size, 'mix', 1, 2)
    wrapper = mixed.train_dataloader.dataset
    assert wrapper.type == 'MultiImageMixDataset'
    assert [t['type'] for t in wrapper.dataset.pipeline] == plain[:-1]
    assert [t['type'] for t in wrapper.pipeline] == ['ClassMix',
                                                     'PackSegInputs']
    # built and read with pseudo-labels = the true labels, it yields
    # packed crops whose labels are the true labels of two images
    labels = tmp_path / 'labels'
    gt_root = tiny_run / 'data' / 'cityscapes' / 'gtFine' / 'train'
    for gt in gt_root.rglob('*_gtFine_labelTrainIds.png'):
        dst = labels / gt.parent.name / gt.name.replace(
            '_gtFine_labelTrainIds', '')
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, dst)
    dataset = DATASETS.build(wrapper)
    # the hook finds the pseudo-label dataset inside the wrapper
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(
        dataset=dataset))
    SelfTrainingHook._train_dataset(runner).pseudo_label_dir = str(labels)
    np.random.seed(1)
    mixed = dataset[0]
    np.random.seed(1)  # the same crop of image 0, not mixed
    dataset.update_skip_type_keys(['ClassMix'])
    plain = dataset[0]
    assert mixed['inputs'].shape == plain['inputs'].shape
    mixed_label = mixed['data_samples'].gt_sem_seg.data
    plain_label = plain['data_samples'].gt_sem_seg.data
    assert mixed_label.shape[-2:] == mixed['inputs'].shape[-2:]
    changed = mixed_label != plain_label
    assert changed.any() and not changed.all()
    # pasted pixels carry the pasted image's colour and label alike (bar a
    # rare pixel whose colour the two images happen to share)
    recoloured = (mixed['inputs'] != plain['inputs']).any(0)[changed[0]]
    assert recoloured.float().mean() > 0.99


@pytest.mark.slow
def test_variant_components_in_the_configs(tiny_run):
    """The rounds' changes select the lab's registered components (the
    plugin's extension points), not patches of the plugin."""
    from calsfda_lab import compare
    from calsfda_lab.experiments import stage3_variants
    run, size = compare.load_run(str(tiny_run))

    def hook(variant):
        cfg = stage3_variants.variant_cfg(run, size, variant, 1, 2)
        return cfg.custom_hooks[0]

    assert hook('shipped').type == 'SelfTrainingHook'
    assert hook('nocw').pseudo_labeler.type == 'UniformWeightPseudoLabeler'
    full = hook('fullnet-trueece-gtfix50')
    assert full.type == 'VariantSelfTrainingHook'
    assert full.train_backbone and full.true_ece
    assert full.true_labels == dict(data_dir=str(tiny_run / 'data'),
                                    everywhere=False, share=0.5)
    assert hook('gtfull').true_labels['everywhere']


def test_true_label_pass_corrects_a_share_of_the_wrong_labels(tmp_path):
    """gtfix50: half of the wrong kept labels (a fixed draw per image)
    take their true class; right and ignored pixels stay as they were."""
    from calsfda_lab.variants import VariantSelfTrainingHook

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 19, (64, 64)).astype(np.uint8)
    gt_dir = tmp_path / 'data' / 'cityscapes' / 'gtFine' / 'train' / 'city'
    gt_dir.mkdir(parents=True)
    Image.fromarray(gt).save(gt_dir / 'x_gtFine_labelTrainIds.png')
    label = gt.copy()
    label[:32] = (gt[:32] + 1) % 19  # wrong
    label[:, :8] = 255  # not kept
    labels = tmp_path / 'pl' / 'round_0'
    (labels / 'city').mkdir(parents=True)
    hook = SimpleNamespace(labeler=SimpleNamespace(num_classes=19))

    def correct(**kwargs):
        Image.fromarray(label).save(labels / 'city' / 'x.png')
        VariantSelfTrainingHook._correct_labels(
            hook, str(labels), str(tmp_path / 'data'), **kwargs)
        return np.array(Image.open(labels / 'city' / 'x.png'))

    outs = [correct(share=0.5) for _ in range(2)]
    out = outs[0]
    np.testing.assert_array_equal(outs[0], outs[1])  # the same draw
    wrong = (label != gt) & (label < 19)
    assert 0.4 < (out[wrong] == gt[wrong]).mean() < 0.6
    assert (out[label == gt] == gt[label == gt]).all()
    assert (out[label == 255] == 255).all()
    # gtfull: the true class on every pixel, kept or not
    np.testing.assert_array_equal(correct(everywhere=True), gt)


def test_round_quality_counts_kept_and_right_pixels(tmp_path):
    """Kept share: pseudo-labelled pixels among those with a true class;
    precision: right ones among those (a hand-made two-image round)."""
    from calsfda_lab.experiments.pseudo_label_precision import round_quality
    data = tmp_path / 'data'
    gt_dir = data / 'cityscapes' / 'gtFine' / 'train' / 'city'
    gt_dir.mkdir(parents=True)
    run_dir = tmp_path / 'run'
    truth = {'a': [[0, 1, 255], [2, 2, 2]], 'b': [[5, 5, 5], [5, 5, 255]]}
    # 255: unlabelled pseudo-label; a: 3 kept (2 right) of 5 with a class,
    # the pseudo-label on a's unlabelled pixel does not count
    pseudo = {'a': [[0, 2, 7], [2, 255, 255]], 'b': [[5, 4, 255],
                                                     [255, 255, 5]]}
    for r in (0, 10):
        (run_dir / 'pseudo_labels' / f'round_{r}' / 'city').mkdir(
            parents=True)
    for name in truth:
        Image.fromarray(np.array(truth[name], np.uint8)).save(
            gt_dir / f'{name}_gtFine_labelTrainIds.png')
        for r in (0, 10):
            label = np.array(pseudo[name], np.uint8)
            if r == 10:  # every labelled pixel gets its true class
                label = np.array(truth[name], np.uint8)
            Image.fromarray(label).save(
                run_dir / 'pseudo_labels' / f'round_{r}' / 'city' /
                f'{name}.png')
    rows = round_quality(str(run_dir), str(data))
    assert [row['round'] for row in rows] == [0, 10]  # numeric order
    # kept with a true class: a 3 (2 right), b 2 (1 right); 10 labelled
    assert rows[0]['kept_share'] == pytest.approx(50.0)
    assert rows[0]['precision'] == pytest.approx(60.0)
    assert rows[1]['kept_share'] == pytest.approx(100.0)
    assert rows[1]['precision'] == pytest.approx(100.0)


def test_a_diverged_method_is_picked_before_it_diverged():
    """After a training diverges (NaN estimates, mIoU near zero), no
    criterion picks a non-finite checkpoint; the summary names the epoch."""
    from calsfda_lab import compare
    nan = float('nan')
    rows = [dict(epoch=1, target_mIoU=25.0, target_ECE=10.0,
                 target_cECE=30.0, estECE=16.0, entropy=17.0, max_prob=84.0),
            dict(epoch=2, target_mIoU=0.7, target_ECE=nan, target_cECE=nan,
                 estECE=nan, entropy=nan, max_prob=nan)]
    summary = compare.summarise(rows)
    assert summary['selected_epoch'] == dict(estECE=1, entropy=1,
                                             max_prob=1, last=2)
    assert summary['target_mIoU_oracle'] == 25.0
    assert summary['diverged_at_epoch'] == 2
    assert compare.summarise(rows[:1])['diverged_at_epoch'] is None


def test_self_training_lr_sets_the_pseudo_labelling_methods_rate(
        tiny_run, monkeypatch):
    """--self-training-lr changes cbst's, calsfda's and calsfda_ce_only's
    stage-3 rate and leaves tent's and target_supervised's at the run's."""
    import os.path as osp

    from calsfda_lab import compare
    run, size = compare.load_run(str(tiny_run))
    everyone = compare.demo.target_lr(run)
    run.self_training_lr = everyone / 10
    rates = {}

    class Stop(Exception):
        pass

    def capture(cfg):
        rates[osp.basename(cfg.work_dir)] = cfg.optim_wrapper.optimizer.lr
        raise Stop

    monkeypatch.setattr(compare.demo, 'train_stage', capture)
    for name in ('tent', 'cbst', 'calsfda', 'target_supervised',
                 'calsfda_ce_only'):
        with pytest.raises(Stop):
            compare.adapting(run, size, str(tiny_run / 'data'),
                             'stage2_value/iter_2.pth', name)
    assert rates == dict(tent=everyone, cbst=everyone / 10,
                         calsfda=everyone / 10,
                         target_supervised=everyone,
                         calsfda_ce_only=everyone / 10)
    # the run's own arguments are untouched
    assert getattr(run, 'target_lr', None) is None
