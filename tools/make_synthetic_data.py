"""Writes the built-in procedural domain-shift benchmark.

    python tools/make_synthetic_data.py data/synthetic --seed 0

writes a GTA5-style labelled source tree (``gta/``, train + val lists) and a
Cityscapes-style target tree (``cityscapes/``: train images for adaptation,
val labels for reporting only), each split from its own seed stream.
"""
import argparse
import os.path as osp

from mmseg_calsfda.datasets.synthetic import (
    write_cityscapes_split,
    write_gta5_split,
)


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
    return parser.parse_args()


def main():
    args = parse_args()
    size = (args.height, args.width)
    gta = osp.join(args.out_dir, 'gta')
    city = osp.join(args.out_dir, 'cityscapes')
    write_gta5_split(gta, args.source_train, *size, args.seed, 'train')
    write_gta5_split(gta, args.source_val, *size, args.seed, 'val')
    write_cityscapes_split(city, args.target_train, *size, args.seed, 'train')
    write_cityscapes_split(city, args.target_val, *size, args.seed, 'val')
    print(f'wrote {args.source_train}+{args.source_val} source and '
          f'{args.target_train}+{args.target_val} target images to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
