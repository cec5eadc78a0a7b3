"""calsfda_lab.experiments.variant_picks on small hand-made records."""
import json

import pytest

from calsfda_lab.experiments import variant_picks

from lab_utils import run_lab


def record(seed, variants):
    return dict(seed=seed, variants=variants)


A0 = dict(mIoU=[30.0, 33.0, 32.0, 31.0], estECE=[10.0, 12.0, 11.0, 13.0],
          ECE=[5.0, 4.0, 2.0, 3.0], cECE=[20.0, 25.0, 26.0, 21.0])
A1 = dict(mIoU=[28.0, 27.0, 29.0, 26.0], estECE=[9.0, 9.5, 9.2, 9.1],
          ECE=[6.0, 7.0, 5.5, 8.0], cECE=[30.0, 31.0, 32.0, 33.0])
B0 = dict(mIoU=[1.0, 2.0], estECE=[2.0, 1.0])


def test_each_rule_picks_by_hand():
    """Checked against picks made by hand: the lowest estimate overall
    and from epoch 2, the lowest true ECE / cECE, the best, the last."""
    got = variant_picks.picks(A0, from_epoch=2)
    assert got == {'estECE': 30.0, 'estECE from': 32.0, 'true ECE': 32.0,
                   'true cECE': 30.0, 'best': 33.0, 'last': 31.0}
    got = variant_picks.picks(A1, from_epoch=3)
    assert got['estECE'] == 28.0 and got['estECE from'] == 26.0
    # a history without the true errors has no true-error pick
    assert variant_picks.picks(B0, from_epoch=1)['true ECE'] is None


def test_table_means_over_the_seeds_and_common_variants():
    records = [record(0, dict(a=A0, b=B0)), record(1, dict(a=A1))]
    result = variant_picks.table(records, None, from_epoch=2)
    assert list(result) == ['a']  # b is in one record only
    assert result['a']['estECE'] == dict(seeds=[30.0, 28.0], mean=29.0)
    assert result['a']['estECE from']['seeds'] == [32.0, 26.0]
    assert result['a']['best']['mean'] == pytest.approx(31.0)
    with pytest.raises(SystemExit, match="not in every record: \\['b'\\]"):
        variant_picks.table(records, ['b'], from_epoch=2)
    none = variant_picks.table([record(0, dict(b=B0))], None, 1)
    assert none['b']['true cECE'] == dict(seeds=[None], mean=None)


def test_command_prints_the_table(tmp_path):
    paths = []
    for seed, hist in ((0, A0), (1, A1)):
        paths.append(tmp_path / f'seed{seed}.json')
        paths[-1].write_text(json.dumps(record(seed, dict(a=hist))))
    res = run_lab('experiments.variant_picks', *paths, '--from-epoch', '2')
    assert res.returncode == 0, res.stderr[-2000:]
    assert '| a | 29.00 (30.00 / 28.00) | 29.00 (32.00 / 26.00) |' in (
        res.stdout)
    bad = run_lab('experiments.variant_picks', *paths, '--from-epoch', '0')
    assert bad.returncode == 2 and '--from-epoch must be >= 1' in bad.stderr
