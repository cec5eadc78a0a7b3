"""Tiny adverse-condition targets, each in its dataset's own layout (file
names, folders, suffixes), for the stage-3 configs' tests."""
import os
import os.path as osp

import cv2

from mmseg_calsfda.datasets.synthetic import make_sample

# data root of each target, as the shipped configs name it (data/<root>)
ROOTS = dict(acdc='acdc', dark_zurich='dark_zurich',
             night_driving='NighttimeDrivingTest', bdd100k='bdd100k')


def _write(path: str, img) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(path, img), path


def _pairs(root: str, items, height: int, width: int, seed: int) -> None:
    """Writes ``(image path, label path or None)`` pairs under ``root``
    with a generated target image and its train-id label."""
    for i, (img_path, label_path) in enumerate(items):
        img, label = make_sample(seed + i, height, width, 'target')
        _write(osp.join(root, img_path), img)
        if label_path:
            _write(osp.join(root, label_path), label)


def write_acdc(root: str, num: int, height: int, width: int) -> None:
    """``rgb_anon/<condition>/<split>/<sequence>/..._rgb_anon.png`` and
    ``gt/.../..._gt_labelTrainIds.png``; the reference images and the
    test split (no labels) are there too, to be left out."""
    items = []
    for c, condition in enumerate(('fog', 'night', 'rain', 'snow')):
        for split in ('train', 'val', 'test', 'train_ref'):
            for i in range(num):
                seq = f'GOPR04{c}{i % 2}'
                stem = f'{seq}/{seq}_frame_{i:06d}'
                labelled = split in ('train', 'val')
                items.append((
                    f'rgb_anon/{condition}/{split}/{stem}_rgb_anon.png',
                    f'gt/{condition}/{split}/{stem}_gt_labelTrainIds.png'
                    if labelled else None))
    _pairs(osp.join(root, ROOTS['acdc']), items, height, width, 100)


def write_dark_zurich(root: str, num: int, height: int,
                      width: int) -> None:
    """``rgb_anon/train/{night,day}/<sequence>/..._rgb_anon.png`` (no
    labels), ``rgb_anon/val/night`` with ``gt/val/night/..._gt_
    labelTrainIds.png``."""
    items = []
    for time in ('night', 'day'):
        items += [(f'rgb_anon/train/{time}/GOPR0351/GOPR0351_frame_{i:06d}'
                   '_rgb_anon.png', None) for i in range(num)]
    for i in range(num):
        stem = f'val/night/GOPR0356/GOPR0356_frame_{i:06d}'
        items.append((f'rgb_anon/{stem}_rgb_anon.png',
                      f'gt/{stem}_gt_labelTrainIds.png'))
    _pairs(osp.join(root, ROOTS['dark_zurich']), items, height, width, 200)


def write_night_driving(root: str, num: int, height: int,
                        width: int) -> None:
    """``leftImg8bit/test/night/..._leftImg8bit.png`` with
    ``gtCoarse_daytime_trainvaltest/test/night/..._gtCoarse_
    labelTrainIds.png``."""
    items = [(f'leftImg8bit/test/night/{i}_frame_{i:04d}_leftImg8bit.png',
              'gtCoarse_daytime_trainvaltest/test/night/'
              f'{i}_frame_{i:04d}_gtCoarse_labelTrainIds.png')
             for i in range(num)]
    _pairs(osp.join(root, ROOTS['night_driving']), items, height, width, 300)


def write_bdd100k(root: str, num: int, height: int, width: int) -> None:
    """``images/10k/<split>/<name>.jpg`` with
    ``labels/sem_seg/masks/<split>/<name>.png``."""
    items = [(f'images/10k/{split}/{i:04x}a1b2-{split}.jpg',
              f'labels/sem_seg/masks/{split}/{i:04x}a1b2-{split}.png')
             for split in ('train', 'val') for i in range(num)]
    _pairs(osp.join(root, ROOTS['bdd100k']), items, height, width, 400)


def write_adverse_targets(root: str, num: int = 4, height: int = 64,
                          width: int = 128) -> str:
    """All four targets under ``root``; returns ``root``."""
    for write in (write_acdc, write_dark_zurich, write_night_driving,
                  write_bdd100k):
        write(root, num, height, width)
    return root
