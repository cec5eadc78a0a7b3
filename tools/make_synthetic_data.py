"""Writes the built-in procedural domain-shift benchmark.

    python tools/make_synthetic_data.py data/synthetic --seed 0

writes a GTA5-style labelled source tree (``gta/``: raw Cityscapes label
ids, converted to train ids by the real GTA5 converter, train + val lists)
and a Cityscapes-style target tree (``cityscapes/``: train images for
adaptation, val labels for reporting only), each split from its own seed
stream.
"""
import argparse

from mmseg_calsfda.datasets.synthetic import SHIFTS, write_benchmark


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('out_dir', help='root of the generated data')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--source-train', type=int, default=200)
    parser.add_argument('--source-val', type=int, default=50)
    parser.add_argument('--target-train', type=int, default=200)
    parser.add_argument('--target-val', type=int, default=50)
    parser.add_argument('--shift', default='default', choices=list(SHIFTS),
                        help='the preset: default (colour/style shift). The '
                        "lab's class-conditional presets (swap, hard, below) "
                        'are written by  python -m calsfda_lab.make_data  '
                        '(projects/calsfda_lab)')
    parser.add_argument('--grid', metavar='PNG',
                        help='also save a grid of source and target '
                        'examples with their label maps')
    return parser.parse_args()


def save_grid(path: str, seed: int, height: int, width: int,
              num: int = 3, shift: str = 'default') -> None:
    """Rows: source images, source labels, target images, target
    labels (same layout seeds, so layouts and styles can be compared)."""
    import cv2
    import numpy as np

    from mmseg_calsfda.datasets.label_maps import CITYSCAPES_PALETTE
    from mmseg_calsfda.datasets.synthetic import make_sample
    palette = np.array(CITYSCAPES_PALETTE + [[0, 0, 0]] * 237, np.uint8)
    rows = []
    for domain in ('source', 'target'):
        samples = [make_sample(seed + i, height, width, domain, shift)
                   for i in range(num)]
        rows.append(np.concatenate([img for img, _ in samples], axis=1))
        rows.append(np.concatenate([palette[lab] for _, lab in samples],
                                   axis=1))
    grid = np.concatenate(rows, axis=0)
    cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main():
    args = parse_args()
    write_benchmark(args.out_dir, args.seed, args.height, args.width,
                    args.source_train, args.source_val, args.target_train,
                    args.target_val, shift=args.shift)
    if args.grid:
        save_grid(args.grid, args.seed, args.height, args.width,
                  shift=args.shift)
    print(f'wrote {args.source_train}+{args.source_val} source and '
          f'{args.target_train}+{args.target_val} target images to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
