"""GTA5/SYNTHIA converters and the procedural benchmark generator."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from mmseg_calsfda.datasets.converters import (
    SYNTHIA_FORMAT,
    BadLabelError,
    convert_label,
)
from mmseg_calsfda.datasets.label_maps import CITYSCAPES_IDS, SYNTHIA_IDS
from mmseg_calsfda.datasets.synthetic import make_sample
from tests.utils import run_cli


def run(tool, *args):
    return run_cli(
        [sys.executable, f'tools/dataset_converters/{tool}.py', *args])


def gta_tree(root, labels):
    """A GTA5 tree with the given raw label arrays."""
    for i, label in enumerate(labels):
        for sub, data in (('images', np.zeros((*label.shape, 3), np.uint8)),
                          ('labels', label)):
            path = osp.join(root, sub, f'{i:05d}.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, data)


def test_gta5_converter_maps_ids_and_writes_splits(tmp_path):
    ids = np.array([[7, 8, 11, 0], [33, 33, 1, 33]], np.uint8)
    gta_tree(tmp_path, [ids] * 5)
    res = run('gta5', str(tmp_path), '--nproc', '2', '--val-size', '2')
    assert res.returncode == 0, res.stderr
    out = cv2.imread(str(tmp_path / 'labels' / '00000_labelTrainIds.png'),
                     cv2.IMREAD_UNCHANGED)
    # 7 road, 8 sidewalk, 11 building, 0 unlabeled, 33 bicycle, 1 -> ignore
    assert out.tolist() == [[0, 1, 2, 255], [18, 18, 255, 18]]
    train = (tmp_path / 'train.txt').read_text().split()
    val = (tmp_path / 'val.txt').read_text().split()
    assert len(train) == 3 and len(val) == 2 and not set(train) & set(val)
    stats = json.loads((tmp_path / 'class_stats.json').read_text())
    assert stats['num_images'] == 5
    assert stats['pixels']['bicycle'] == 15 and stats['images']['road'] == 5


def test_gta5_bad_files_named_or_skipped(tmp_path):
    good = np.full((2, 2), 7, np.uint8)
    gta_tree(tmp_path, [good, good, np.full((2, 2), 40, np.uint8)])
    res = run('gta5', str(tmp_path), '--nproc', '1')
    assert res.returncode != 0
    assert '00002.png' in res.stderr and '[40]' in res.stderr
    assert '--skip-bad' in res.stderr
    (tmp_path / 'images' / '00001.png').unlink()  # a label without image
    res = run('gta5', str(tmp_path), '--nproc', '1', '--skip-bad')
    assert res.returncode == 0, res.stderr
    assert 'skipped' in res.stdout and '00001.png' in res.stdout
    assert '00002.png' in res.stdout
    stats = json.loads((tmp_path / 'class_stats.json').read_text())
    assert stats['num_images'] == 1 and len(stats['skipped']) == 2
    res = run('gta5', str(tmp_path / 'missing'))
    assert 'does not exist' in res.stderr and 'missing' in res.stderr


def test_synthia_reads_first_channel_of_16bit_label(tmp_path):
    ids = np.array([[3, 4, 2], [1, 0, 22]], np.uint16)
    label = np.zeros((2, 3, 3), np.uint16)
    label[..., 2] = ids  # the first (R) channel, BGR in OpenCV
    label[..., 0] = 999  # other channels hold instance ids
    path = tmp_path / 'GT' / 'LABELS' / '0000000.png'
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), label)
    (tmp_path / 'RGB').mkdir()
    cv2.imwrite(str(tmp_path / 'RGB' / '0000000.png'),
                np.zeros((2, 3, 3), np.uint8))
    counts = convert_label(str(path), SYNTHIA_FORMAT,
                           str(tmp_path / 'RGB' / '0000000.png'))
    out = cv2.imread(str(path)[:-4] + '_labelTrainIds.png',
                     cv2.IMREAD_UNCHANGED)
    # 3 road, 4 sidewalk, 2 building, 1 sky, 0 void, 22 (lanemarking) ignore
    assert out.tolist() == [[0, 1, 2], [9, 255, 255]]
    assert counts.shape == (16, 2) and counts[:, 0].sum() == 4
    label[0, 0, 2] = 23
    cv2.imwrite(str(path), label)
    with pytest.raises(BadLabelError, match=r'0000000.png.*\[23\]'):
        convert_label(str(path), SYNTHIA_FORMAT)


def test_id_maps():
    assert CITYSCAPES_IDS == (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24,
                              25, 26, 27, 28, 31, 32, 33)
    assert len(SYNTHIA_IDS) == 16 and len(set(SYNTHIA_IDS)) == 16


def test_generator_is_deterministic_per_seed():
    a = make_sample(5, 64, 128, 'target')
    b = make_sample(5, 64, 128, 'target')
    c = make_sample(6, 64, 128, 'target')
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    src, tgt = make_sample(5, 64, 128, 'source'), a
    assert not np.array_equal(src[0], tgt[0])


def test_generated_tree_is_read_by_the_real_dataset(synthetic_root):
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(dict(
        type='GTA5Dataset', data_root=osp.join(synthetic_root, 'gta'),
        ann_file='val.txt',
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        pipeline=[]))
    assert len(dataset) == 4
    info = dataset[0]
    label = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
    raw = cv2.imread(info['seg_map_path'].replace('_labelTrainIds', ''),
                     cv2.IMREAD_UNCHANGED)
    lut = np.full(256, 255, np.uint8)
    lut[list(CITYSCAPES_IDS)] = np.arange(19)
    assert np.array_equal(lut[raw], label)


def test_missing_data_root_names_key_and_path(tmp_path):
    from mmseg.registry import DATASETS
    with pytest.raises(FileNotFoundError,
                       match=r'data_prefix.img_path .*nowhere'):
        DATASETS.build(dict(
            type='GTA5Dataset', data_root=str(tmp_path / 'nowhere'),
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=[]))
