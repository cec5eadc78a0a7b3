"""calsfda_lab.compare_summary: mean and spread of compare.py runs."""
import json
import statistics

from lab_utils import run_lab

CRITERIA = ('estECE', 'entropy', 'max_prob', 'last')


def _method(miou):
    """A compare.py method entry from its per-checkpoint mIoUs (estECE
    falls with the checkpoint index, so it picks the last one)."""
    rows = [dict(epoch=i, target_mIoU=v, estECE=10.0 - i, entropy=float(i),
                 max_prob=50.0) for i, v in enumerate(miou)]
    oracle = max(miou)
    picks = dict(estECE=miou[-1], entropy=miou[0], max_prob=miou[0],
                 last=miou[-1])
    return dict(target_mIoU_last=miou[-1], target_mIoU_oracle=oracle,
                target_mIoU_selected=picks,
                regret={c: round(oracle - v, 4) for c, v in picks.items()},
                checkpoints=rows)


def _write_run(path, seed, adabn, calsfda, shift='hard', spearman=0.7,
               **extra):
    path.mkdir()
    result = dict(seed=seed, shift=shift, **extra,
                  ece_estimation=dict(spearman=spearman),
                  methods=dict(adabn=_method([adabn]),
                               calsfda=_method(calsfda)))
    (path / 'comparison.json').write_text(json.dumps(result))
    return str(path)


def test_summary_means_spreads_and_paired_differences(tmp_path):
    runs = [_write_run(tmp_path / 's3', 3, 20.0, [22.0, 25.0], spearman=.6),
            _write_run(tmp_path / 's4', 4, 24.0, [27.0, 26.0], spearman=.8),
            _write_run(tmp_path / 's5', 5, 21.0, [23.5, 24.5], spearman=.7)]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *[*runs,
                   '--out', str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['seeds'] == [3, 4, 5] and summary['shift'] == 'hard'
    cal = summary['methods']['calsfda']
    last = [25.0, 26.0, 24.5]
    assert abs(cal['last']['mean'] - statistics.mean(last)) < 1e-9
    assert abs(cal['last']['std'] - statistics.stdev(last)) < 1e-9
    assert cal['oracle']['values'] == [25.0, 27.0, 24.5]
    assert cal['regret']['entropy']['values'] == [3.0, 0.0, 1.0]
    assert cal['regret']['estECE']['max'] == 1.0
    # paired with adabn seed by seed, not mean minus mean of shuffled runs
    assert cal['vs_adabn']['values'] == [5.0, 2.0, 3.5]
    assert summary['methods']['adabn']['vs_adabn']['values'] == [0, 0, 0]
    assert abs(summary['ece_spearman']['mean'] - 0.7) < 1e-9
    table = (out / 'summary.md').read_text()
    assert '| calsfda | 25.17 ± 0.76 |' in table
    assert 'seeds 3, 4, 5:' in table  # runs without rates name none
    assert (out / 'summary.png').stat().st_size > 0


def test_summary_refuses_mixed_runs(tmp_path):
    a = _write_run(tmp_path / 'a', 3, 20.0, [21.0])
    b = _write_run(tmp_path / 'b', 4, 20.0, [21.0], shift='default')
    c = _write_run(tmp_path / 'c', 3, 20.0, [21.0])
    out = str(tmp_path / 'out')
    cmd = []
    res = run_lab('compare_summary', *cmd + [a, b, '--out', out])
    assert res.returncode != 0
    assert "the runs mix shift values ['default', 'hard']" in res.stderr
    # a run without network (older) is the from-scratch ResNet-18
    d = _write_run(tmp_path / 'd', 5, 20.0, [21.0],
                   network='efficientnet_lite0', target_lr=0.01)
    res = run_lab('compare_summary', *cmd + [a, d, '--out', out])
    assert ("the runs mix network values ['efficientnet_lite0', "
            "'resnet18']") in res.stderr
    e = _write_run(tmp_path / 'e', 6, 20.0, [21.0], entropy_weight=0.0)
    res = run_lab('compare_summary', *cmd + [a, e, '--out', out])
    assert "the runs mix entropy_weight values [0.0, 1.0]" in res.stderr
    # the pseudo-labelling methods' rate: a run without one had that of
    # every method
    f = _write_run(tmp_path / 'f', 7, 20.0, [21.0], target_lr=0.003,
                   self_training_lr=0.0003)
    g = _write_run(tmp_path / 'g', 8, 20.0, [21.0], target_lr=0.003)
    res = run_lab('compare_summary', *cmd + [f, g, '--out', out])
    assert ("the runs mix self_training_lr values [0.0003, 0.003]"
            in res.stderr)
    # the stage-2 recipe: a run without one had the shipped stage 2
    h = _write_run(tmp_path / 'h', 9, 20.0, [21.0],
                   stage2_recipe='present-photometric')
    res = run_lab('compare_summary', *cmd + [a, h, '--out', out])
    assert ("the runs mix stage2_recipe values ['present-photometric', "
            "'shipped']") in res.stderr
    res = run_lab('compare_summary', *cmd + [a, c, '--out', out])
    assert 'a seed appears twice among [3, 3]' in res.stderr
    res = run_lab('compare_summary',
                  *cmd + [a, str(tmp_path / 'missing'), '--out', out])
    assert 'missing/comparison.json does not exist' in res.stderr
    assert not (tmp_path / 'out').exists()


def test_summary_best_baseline_stage1_and_pseudo_label_rounds(tmp_path):
    """calsfda is paired with the better of tent and cbst on each seed;
    stage 1's DiffECE is paired with its CE-only twin; the pseudo-label
    rounds are summarised round by round."""
    def run(seed, tent, cbst, calsfda, cece, twin_cece, precision):
        path = tmp_path / f's{seed}'
        path.mkdir()
        methods = dict(adabn=_method([20.0]), tent=_method(tent),
                       cbst=_method(cbst), calsfda=_method(calsfda))
        for name in ('cbst', 'calsfda'):
            methods[name]['pseudo_labels'] = [
                dict(round=r, kept_share=20.0 + 5 * r, precision=p)
                for r, p in enumerate(precision)]
        stage1 = dict(
            diffece=dict(mIoU=30.0, ECE=5.0, cECE=cece),
            ce_only=dict(mIoU=31.0, ECE=6.0, cECE=twin_cece))
        (path / 'comparison.json').write_text(json.dumps(dict(
            seed=seed, shift='hard', stage1=stage1, methods=methods)))
        return str(path)

    # the estECE picks are the last checkpoints
    runs = [run(3, [22.0, 23.0], [24.0, 21.0], [25.0, 26.0], 20.0, 24.0,
                [80.0, 70.0]),
            run(4, [25.0, 24.0], [20.0, 22.0], [21.0, 23.0], 22.0, 21.0,
                [90.0, 60.0])]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *runs, '--out', str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    cal = summary['methods']['calsfda']
    # seed 3: 26 - max(23, 21); seed 4: 23 - max(24, 22)
    assert cal['vs_best_baseline']['values'] == [3.0, -1.0]
    assert 'vs_best_baseline' not in summary['methods']['cbst']
    assert summary['stage1']['cECE']['difference']['values'] == [-4.0, 1.0]
    assert summary['stage1']['mIoU']['ce_only']['mean'] == 31.0
    rounds = cal['pseudo_labels']
    assert [r['round'] for r in rounds] == [0, 1]
    assert rounds[0]['precision']['values'] == [80.0, 90.0]
    assert rounds[1]['kept_share']['mean'] == 25.0
    assert 'pseudo_labels' not in summary['methods']['tent']
    table = (out / 'summary.md').read_text()
    assert 'calsfda − the better of tent and cbst' in table
    assert 'cECE 21.00 ± 1.41 vs 22.50 ± 2.12' in table
    assert 'calsfda pseudo-labels (target train): round 0: kept ' \
        '20.00 ± 0.00 %, precision 85.00 ± 7.07 %' in table


def test_summary_true_calibration_picks(tmp_path):
    """The checkpoint of lowest true cECE / ECE, per seed, against the
    estECE pick; methods with one checkpoint have none."""
    def run(seed, miou, cece, ece):
        path = tmp_path / f's{seed}'
        path.mkdir()
        calsfda = _method(miou)  # estECE picks the last checkpoint
        for row, c, e in zip(calsfda['checkpoints'], cece, ece):
            row.update(target_cECE=c, target_ECE=e)
        methods = dict(adabn=_method([20.0]), calsfda=calsfda)
        methods['adabn']['checkpoints'][0].update(target_cECE=1.0,
                                                  target_ECE=1.0)
        (path / 'comparison.json').write_text(json.dumps(dict(
            seed=seed, shift='hard', methods=methods)))
        return str(path)

    runs = [run(3, [22.0, 25.0, 24.0], [9.0, 8.0, 7.0], [3.0, 1.0, 2.0]),
            run(4, [26.0, 21.0, 23.0], [5.0, 6.0, 7.0], [4.0, 5.0, 3.0])]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *runs, '--out', str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    picks = summary['methods']['calsfda']['true_calibration_pick']
    assert picks['cECE']['mIoU']['values'] == [24.0, 26.0]
    assert picks['ECE']['mIoU']['values'] == [25.0, 23.0]
    # the estECE picks (last checkpoints, 24 and 23) minus them
    assert picks['cECE']['estECE_minus']['values'] == [0.0, -3.0]
    assert picks['ECE']['estECE_minus']['values'] == [-1.0, 0.0]
    assert 'true_calibration_pick' not in summary['methods']['adabn']
    table = (out / 'summary.md').read_text()
    assert ('calsfda: lowest cECE 25.00 ± 1.41 (estECE pick − it '
            '-1.50 ± 2.12), lowest ECE 24.00 ± 1.41') in table


def test_summary_ablation_pairs_each_ingredient_with_its_twin(tmp_path):
    """One row per ingredient and measure: DiffECE against the CE-only
    stage 1 (and calsfda_ce_only after stage 3), ECE-scaled pseudo-labels
    against CBST's, the estECE regret against the other criteria; every
    difference is paired seed by seed."""
    def run(seed, calsfda, ce_only, cbst, precision, cbst_precision,
            spearman):
        path = tmp_path / f's{seed}'
        path.mkdir()
        methods = dict(adabn=_method([20.0]), cbst=_method(cbst),
                       calsfda=_method(calsfda),
                       calsfda_ce_only=_method(ce_only))
        for name, prec in (('calsfda', precision), ('cbst', cbst_precision)):
            methods[name]['pseudo_labels'] = [
                dict(round=0, kept_share=30.0 if name == 'calsfda' else 20.0,
                     precision=prec)]
        stage1 = dict(diffece=dict(mIoU=30.0, ECE=5.0, cECE=20.0 + seed),
                      ce_only=dict(mIoU=31.0, ECE=6.0, cECE=25.0))
        (path / 'comparison.json').write_text(json.dumps(dict(
            seed=seed, shift='default', stage1=stage1, methods=methods,
            ece_estimation=dict(spearman=spearman))))
        return str(path)

    # estECE picks the last checkpoint; entropy and max_prob the first
    runs = [run(3, [25.0, 26.0], [24.0, 22.0], [21.0, 23.0], 90.0, 80.0,
                0.5),
            run(4, [28.0, 27.0], [25.0, 28.0], [24.0, 25.0], 85.0, 85.0,
                0.25)]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *runs, '--out', str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r['measure']: r
            for r in json.loads((out / 'summary.json').read_text())[
                'ablation']}
    cece = rows['stage 1 target val cECE']
    assert cece['ours']['values'] == [23.0, 24.0]
    assert cece['difference']['values'] == [-2.0, -1.0]
    after = rows['after stage 3: target val mIoU at the estECE pick']
    assert after['difference']['values'] == [4.0, -1.0]  # 26-22, 27-28
    assert rows['round 0 precision %']['difference']['values'] == [10.0, 0.0]
    assert rows['round 0 kept share %']['twin']['mean'] == 20.0
    picked = rows['target val mIoU at the estECE pick']
    assert picked['difference']['values'] == [3.0, 2.0]  # 26-23, 27-25
    # calsfda's regret: estECE 0 and 1; entropy (first epoch) 1 and 0
    assert rows['calsfda regret vs entropy']['difference']['values'] == [
        -1.0, 1.0]
    table = (out / 'summary.md').read_text()
    assert ('| DiffECE (stage 1) | stage 1 target val cECE | DiffECE '
            '23.50 ± 0.71 | CE only 25.00 ± 0.00 | -1.50 ± 0.71 '
            '(-2.00, -1.00) |') in table
    assert 'Value head Spearman per seed: seed 3: 0.500, seed 4: 0.250.' \
        in table


def test_summary_names_the_stage3_rates(tmp_path):
    runs = [_write_run(tmp_path / f's{seed}', seed, 20.0, [22.0],
                       target_lr=0.003, self_training_lr=0.0003)
            for seed in (3, 4)]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *[*runs, '--out', str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert (summary['target_lr'], summary['self_training_lr']) == (0.003,
                                                                    0.0003)
    assert ('seeds 3, 4 (stage-3 rate 0.003, the pseudo-labelling methods '
            '0.0003):') in (out / 'summary.md').read_text()


def test_summary_names_the_stage2_recipe(tmp_path):
    runs = [_write_run(tmp_path / f's{seed}', seed, 20.0, [22.0],
                       target_lr=0.003, stage2_recipe='present')
            for seed in (3, 4)]
    out = tmp_path / 'out'
    res = run_lab('compare_summary', *[*runs, '--out', str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['stage2_recipe'] == 'present'
    assert 'seeds 3, 4 (stage-3 rate 0.003), stage-2 recipe present:' in \
        (out / 'summary.md').read_text()
    # the shipped recipe is not named (summaries from before it read the
    # same)
    shipped = [_write_run(tmp_path / f't{seed}', seed, 20.0, [22.0])
               for seed in (3, 4)]
    res = run_lab('compare_summary', *[*shipped, '--out', str(out)])
    assert 'stage2_recipe' not in json.loads(
        (out / 'summary.json').read_text())
