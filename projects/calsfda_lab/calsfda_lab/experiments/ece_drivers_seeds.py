"""Why the value head ranks on one seed and not another: ece_drivers
records side by side.

    python -m calsfda_lab.experiments.ece_drivers_seeds \\
        projects/calsfda_lab/records/experiments/ece-drivers-effnet-default-seed{0,1,2,3,4,5}.json

Per record (one seed's stage-2 model on its target val images; see
``ece_drivers.py``), the Spearman of the value head's estimate with the
true per-image class-level ECE (the method's: all classes) and with the
pixel error rate, how far that cECE follows the error rate, the classes
the image holds and the mean entropy, and the spread of the cECE over the
images (standard deviation, points). Reads no model: seconds.
"""
import argparse
import json
import os.path as osp
from typing import List

import numpy as np

COLUMNS = (
    ('estimate ~ cECE', ('cECE_all', 'estECE')),
    ('estimate ~ error rate', ('error_rate', 'estECE')),
    ('error rate ~ cECE', ('cECE_all', 'error_rate')),
    ('classes held ~ cECE', ('cECE_all', 'n_true')),
    ('entropy ~ cECE', ('cECE_all', 'entropy')),
)


def row(record: dict) -> dict:
    """One record's columns (:data:`COLUMNS`) and the spread of its
    cECE."""
    out = {name: record['spearman'][truth][driver]
           for name, (truth, driver) in COLUMNS}
    out['sd of cECE'] = round(
        100 * float(np.std([image['cECE_all']
                            for image in record['images']])), 2)
    return out


def table(paths: List[str]) -> str:
    """A markdown table, one line per record (named by its seed and
    file)."""
    names = [name for name, _ in COLUMNS] + ['sd of cECE']
    lines = ['| record | ' + ' | '.join(names) + ' |',
             '|---' * (len(names) + 1) + '|']
    for path in paths:
        with open(path) as f:
            record = json.load(f)
        values = row(record)
        lines.append(f"| seed {record['seed']} "
                     f'(`{osp.basename(path)}`) | ' +
                     ' | '.join(f'{values[n]:g}' for n in names) + ' |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('records', nargs='+',
                        help='ece_drivers.py --out files')
    print(table(parser.parse_args().records))


if __name__ == '__main__':
    main()
