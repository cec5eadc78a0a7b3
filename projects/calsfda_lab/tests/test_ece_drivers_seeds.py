"""ece_drivers_seeds: one line per ece_drivers record, its columns read from
the record's Spearman table and its images."""
import json

import numpy as np
import pytest
from scipy import stats

from calsfda_lab.experiments import ece_drivers, ece_drivers_seeds


def _record(tmp_path, seed, rng):
    columns = rng.random((12, 9))
    images = [dict(cECE_all=c, estECE=e, error_rate=r, n_true=n, entropy=h,
                   one_minus_max_p=m, n_predicted=p, soft_presence=s,
                   cECE_present=q, **{'n_reaching_0.3': t})
              for c, e, r, n, h, m, p, s, q, t in zip(
                  *columns.T.tolist(), rng.random(12).tolist())]
    path = tmp_path / f'seed{seed}.json'
    path.write_text(json.dumps(dict(
        seed=seed, spearman=ece_drivers.spearman_table(images),
        images=images)))
    return str(path), images


def test_one_line_per_record_with_its_own_numbers(tmp_path):
    rng = np.random.default_rng(0)
    paths, images = zip(*[_record(tmp_path, s, rng) for s in (2, 5)])
    lines = ece_drivers_seeds.table(list(paths)).splitlines()
    assert len(lines) == 4 and lines[2].startswith('| seed 2 (`seed2.json`)')
    for line, rows in zip(lines[2:], images):
        cells = [float(c) for c in line.strip('|').split('|')[1:]]
        cece = [r['cECE_all'] for r in rows]
        expected = [stats.spearmanr(cece, [r['estECE'] for r in rows])[0],
                    stats.spearmanr([r['error_rate'] for r in rows],
                                    [r['estECE'] for r in rows])[0],
                    stats.spearmanr(cece, [r['error_rate'] for r in rows])[0],
                    stats.spearmanr(cece, [r['n_true'] for r in rows])[0],
                    stats.spearmanr(cece, [r['entropy'] for r in rows])[0],
                    100 * np.std(cece)]
        assert cells == pytest.approx(expected, abs=6e-3)
