"""A plain folder of unlabelled images as the target set; seeded random
subsets of a dataset."""
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_calsfda.datasets import pseudo_label_path
from mmseg_calsfda.datasets.random_subset import random_subset

NAMES = ('clip_b/frame_0002.jpg', 'clip_b/frame_0001.jpg',
         'clip_a/deep/er/IMG_7.JPG', 'zz.jpeg', 'photo.png')


def write_images(root, names=NAMES, size=(16, 24)):
    """Small RGB images at ``names`` under ``root``, plus files that are no
    image (a text file, a hidden one, a hidden folder)."""
    rng = np.random.default_rng(0)
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size + (3, ), np.uint8)).save(
            path, format='PNG' if name.endswith('.png') else 'JPEG')
    (root / 'notes.txt').write_text('not an image')
    (root / '.hidden.jpg').write_bytes(b'')
    (root / '.cache').mkdir(exist_ok=True)
    (root / '.cache' / 'thumb.jpg').write_bytes(b'')
    return root


def folder(root, **kwargs):
    return DATASETS.build(dict(type='ImageFolderDataset',
                               data_root=str(root), pipeline=[], **kwargs))


def rel_paths(dataset):
    return [osp.relpath(dataset.get_data_info(i)['img_path'],
                        dataset.data_root) for i in range(len(dataset))]


def test_every_image_in_every_sub_folder_sorted_without_labels(tmp_path):
    dataset = folder(write_images(tmp_path))
    assert rel_paths(dataset) == sorted(NAMES)
    info = dataset.get_data_info(0)
    assert 'seg_map_path' not in info and info['seg_fields'] == []
    assert len(dataset.metainfo['classes']) == 19
    sample = DATASETS.build(dict(
        type='ImageFolderDataset', data_root=str(tmp_path),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackSegInputs')]))[0]
    assert tuple(sample['inputs'].shape) == (3, 16, 24)


def test_suffix_is_configurable_and_matched_in_any_case(tmp_path):
    write_images(tmp_path)
    assert rel_paths(folder(tmp_path, img_suffix='.jpg')) == [
        'clip_a/deep/er/IMG_7.JPG', 'clip_b/frame_0001.jpg',
        'clip_b/frame_0002.jpg'
    ]
    assert rel_paths(folder(tmp_path, img_suffix=['.png'])) == ['photo.png']
    assert rel_paths(folder(tmp_path, data_prefix=dict(
        img_path='clip_b'))) == ['clip_b/frame_0001.jpg',
                                 'clip_b/frame_0002.jpg']


def test_pseudo_labels_mirror_the_folder_without_the_suffix(tmp_path):
    dataset = DATASETS.build(dict(
        type='PseudoLabelFolderDataset',
        data_root=str(write_images(tmp_path / 'imgs')),
        pseudo_label_dir=str(tmp_path / 'round_0'), pipeline=[]))
    labels = [osp.relpath(dataset.get_data_info(i)['seg_map_path'],
                          tmp_path / 'round_0') for i in range(len(dataset))]
    assert labels == ['clip_a/deep/er/IMG_7.png', 'clip_b/frame_0001.png',
                      'clip_b/frame_0002.png', 'photo.png', 'zz.png']
    assert dataset.get_data_info(0)['label_map'] is None


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / 'imgs')


def test_empty_or_missing_folder_is_named(tmp_path, images):
    (tmp_path / 'empty' / 'sub').mkdir(parents=True)
    (tmp_path / 'empty' / 'sub' / 'a.txt').write_text('')
    with pytest.raises(FileNotFoundError, match=r"no image \(\.jpg, \.jpeg, "
                       r"\.png, any case\) in '.*empty/?' or its sub-folders"):
        folder(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match=r"no image \(\.bmp, any case"
                       r"\) in '.*imgs/?'"):
        folder(images, img_suffix='.bmp')
    with pytest.raises(FileNotFoundError, match=r"image folder '.*nowhere/?' "
                       'does not exist'):
        folder(tmp_path / 'nowhere')
    with pytest.raises(ValueError, match='img_suffix must be'):
        folder(images, img_suffix=[])


def test_images_sharing_a_pseudo_label_are_refused(tmp_path):
    write_images(tmp_path, names=('a/x.jpg', 'a/x.png'))
    with pytest.raises(ValueError, match=r"'.*a/x\.jpg' and '.*a/x\.png' "
                       r"differ only in their suffix .* 'a/x\.png'"):
        folder(tmp_path)
    assert len(folder(tmp_path, img_suffix='.jpg')) == 1


def test_pseudo_label_path_strips_the_suffix_it_ends_with():
    assert pseudo_label_path('out', 'img/a/b_leftImg8bit.png', 'img',
                             '_leftImg8bit.png') == 'out/a/b.png'
    assert pseudo_label_path('out', 'img/a/IMG_1.JPG', 'img',
                             ('.png', '.jpg')) == 'out/a/IMG_1.png'


# --------------------------------------------------------------- subsets
def test_subset_is_a_seeded_random_sample_in_drawn_order(tmp_path):
    names = [f'clip/frame_{i:04d}.jpg' for i in range(40)]
    write_images(tmp_path, names=names, size=(4, 4))
    every = rel_paths(folder(tmp_path))
    sample = rel_paths(folder(tmp_path, subset=dict(size=10, seed=3)))
    assert len(sample) == 10 == len(set(sample)) and set(sample) < set(every)
    assert sample == rel_paths(folder(tmp_path, subset=dict(size=10,
                                                            seed=3)))
    assert sample != every[:10]  # not the first frames
    assert sample != sorted(sample)  # drawn order: any prefix is random
    assert sample != rel_paths(folder(tmp_path, subset=dict(size=10,
                                                            seed=4)))
    # the seed defaults to 0; a size above the count keeps every image
    assert rel_paths(folder(tmp_path, subset=dict(size=10))) == rel_paths(
        folder(tmp_path, subset=dict(size=10, seed=0)))
    assert sorted(rel_paths(folder(tmp_path, subset=dict(
        size=100)))) == every


def test_random_subset_draws_without_replacement():
    items = [dict(i=i) for i in range(5)]
    assert sorted(d['i'] for d in random_subset(items, 5, 1)) == list(
        range(5))
    assert random_subset(items, 2, 1) == random_subset(items, 2, 1)


@pytest.mark.parametrize('subset, match', [
    (dict(size=0), r'subset\.size must be an int >= 1, got 0'),
    (dict(seed=1), r'subset\.size must be an int >= 1, got None'),
    (dict(size=5, n=1), r"subset takes \['size', 'seed'\], got \['n'\]"),
    (dict(size=5, seed='a'), r"subset\.seed must be an int, got 'a'"),
    (5, r'subset must be dict\(size=\.\.\., seed=\.\.\.\) or None, got 5'),
])
def test_bad_subsets_are_named(images, subset, match):
    with pytest.raises(ValueError, match='ImageFolderDataset: ' + match):
        folder(images, subset=subset)


def test_subset_and_indices_together_are_refused(images):
    with pytest.raises(ValueError, match='subset .* or indices .*not both'):
        folder(images, subset=dict(size=2), indices=2)


def test_cityscapes_keeps_the_first_n_and_takes_a_subset_as_an_option(
        synthetic_root):
    """The shipped estimation set (indices=N) is unchanged: the first N in
    sorted order; subset=dict(...) is the option."""
    base = dict(type='CheckedCityscapesDataset',
                data_root=osp.join(synthetic_root, 'cityscapes'),
                data_prefix=dict(img_path='leftImg8bit/train'), pipeline=[])
    every = rel_paths(DATASETS.build(base))
    assert rel_paths(DATASETS.build(dict(base, indices=3))) == every[:3]
    sample = rel_paths(DATASETS.build(dict(base, subset=dict(size=3,
                                                             seed=1))))
    assert len(sample) == 3 and set(sample) < set(every)
    order = np.random.default_rng(1).permutation(len(every))[:3]
    assert sample == [every[i] for i in order]
