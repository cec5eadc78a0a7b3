"""ACDCDataset and ACDCPseudoLabelDataset on ACDC's layout."""
import os.path as osp
import shutil

import pytest
from mmseg.registry import DATASETS

from mmseg_calsfda.datasets import pseudo_label_path
from tests.adverse_layouts import write_acdc

NUM = 3  # images per condition and split


@pytest.fixture(scope='module')
def acdc_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('layouts'))
    write_acdc(root, NUM, 16, 32)
    return osp.join(root, 'acdc')


def build(root, **kwargs):
    return DATASETS.build(dict(type='ACDCDataset', data_root=root, **kwargs))


def rel(path, root):
    return osp.relpath(path, root)


def test_lists_the_split_of_the_chosen_conditions_with_labels(acdc_root):
    dataset = build(acdc_root, conditions=('snow', 'fog'), split='val')
    paths = [rel(info['img_path'], acdc_root) for info in dataset]
    assert len(paths) == 2 * NUM and paths == sorted(paths)
    assert sorted({tuple(p.split(osp.sep)[:3]) for p in paths}) == [
        ('rgb_anon', 'fog', 'val'), ('rgb_anon', 'snow', 'val')]
    info = dataset.get_data_info(0)
    assert rel(info['seg_map_path'], acdc_root) == osp.join(
        'gt', 'fog', 'val', 'GOPR0400',
        'GOPR0400_frame_000000_gt_labelTrainIds.png')
    assert dataset.metainfo['classes'][-1] == 'bicycle'
    assert len(dataset.metainfo['classes']) == 19
    # the default: all four conditions, train, with labels
    assert len(build(acdc_root)) == 4 * NUM


def test_without_seg_map_path_the_images_come_unlabelled(acdc_root):
    dataset = build(acdc_root, conditions='night',
                    data_prefix=dict(img_path='rgb_anon'))
    assert len(dataset) == NUM
    assert all('seg_map_path' not in info for info in dataset)
    assert all(f'{osp.sep}night{osp.sep}train{osp.sep}' in info['img_path']
               for info in dataset)


@pytest.mark.parametrize('conditions, message', [
    (('fog', 'haze'), r"unknown condition 'haze' in conditions=\('fog', "
     r"'haze'\); ACDC has \('fog', 'night', 'rain', 'snow'\)"),
    ('Fog', r"unknown condition 'Fog'"),
    (('rain', 'rain'), r"condition 'rain' is given twice"),
    ((), r'conditions is empty'),
])
def test_bad_conditions_are_named(acdc_root, conditions, message):
    with pytest.raises(ValueError, match=r'^ACDCDataset: ' + message):
        build(acdc_root, conditions=conditions)


def test_bad_split_and_missing_data_are_named(acdc_root, tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of .*'test_ref'"
                       r"\), got 'validation'"):
        build(acdc_root, split='validation')
    # the test split has no labels: asking for them is refused
    with pytest.raises(FileNotFoundError,
                       match=rf'{2 * NUM} image\(s\) have no label file'):
        build(acdc_root, conditions=('fog', 'rain'), split='test',
              data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'))
    # a condition that was not unpacked
    partial = str(tmp_path / 'acdc')
    shutil.copytree(acdc_root, partial)
    shutil.rmtree(osp.join(partial, 'rgb_anon', 'snow'))
    with pytest.raises(FileNotFoundError, match=r"no folder '.*rgb_anon/snow/"
                       r"train' for condition 'snow', split 'train'"):
        build(partial)


def test_pseudo_label_dataset_reads_the_pass_labels(acdc_root, tmp_path):
    """The training set lists the images the pseudo-label pass labels, and
    finds each label where the pass writes it."""
    conditions = ('night', 'rain')
    images = build(acdc_root, conditions=conditions,
                   data_prefix=dict(img_path='rgb_anon'))
    train = DATASETS.build(dict(type='ACDCPseudoLabelDataset',
                                data_root=acdc_root, conditions=conditions,
                                pseudo_label_dir=str(tmp_path)))
    assert [i['img_path'] for i in train.data_list] == [
        i['img_path'] for i in images.data_list]
    for idx, info in enumerate(images):
        assert train.get_data_info(idx)['seg_map_path'] == pseudo_label_path(
            str(tmp_path), info['img_path'], images.data_prefix['img_path'],
            images.img_suffix)
    assert rel(train.get_data_info(0)['seg_map_path'], tmp_path) == osp.join(
        'night', 'train', 'GOPR0410', 'GOPR0410_frame_000000.png')
    train.pseudo_label_dir = None
    with pytest.raises(RuntimeError, match='^ACDCPseudoLabelDataset has no '
                       'pseudo-labels yet'):
        train.get_data_info(0)
