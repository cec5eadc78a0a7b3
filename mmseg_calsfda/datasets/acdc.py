import os.path as osp
from typing import List, Sequence, Union

import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..utils import check_choice
from .label_maps import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

ACDC_CONDITIONS = ('fog', 'night', 'rain', 'snow')
ACDC_SPLITS = ('train', 'val', 'test', 'train_ref', 'val_ref', 'test_ref')


@DATASETS.register_module()
class ACDCDataset(BaseSegDataset):
    """ACDC (Adverse Conditions Dataset with Correspondences) with the 19
    Cityscapes classes, for some of its four conditions.

    Layout (https://acdc.vision.ee.ethz.ch/, ``rgb_anon_trainvaltest.zip``
    and ``gt_trainval.zip`` unpacked into ``data/acdc``)::

        rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
        gt/<condition>/<split>/<sequence>/<name>_gt_labelTrainIds.png

    ``data_prefix`` names the two top folders; the dataset lists the images
    of ``split`` under each of ``conditions``, sorted by path. Without
    ``seg_map_path`` in ``data_prefix`` the images come without labels
    (the unlabelled target of stage 3). The test split has no labels.

    Args:
        conditions (str | Sequence[str]): Any of ``'fog'``, ``'night'``,
            ``'rain'``, ``'snow'``. Defaults to all four.
        split (str): ``'train'``, ``'val'``, ``'test'`` or the daytime
            reference images of one of them (``'train_ref'``, ...).
            Defaults to ``'train'``.
        img_suffix (str): Defaults to ``'_rgb_anon.png'``.
        seg_map_suffix (str): Defaults to ``'_gt_labelTrainIds.png'``.
        data_prefix (dict): Defaults to
            ``dict(img_path='rgb_anon', seg_map_path='gt')``.
        **kwargs: Arguments of :class:`BaseSegDataset`.
    """
    METAINFO = dict(classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)

    def __init__(self,
                 conditions: Union[str, Sequence[str]] = ACDC_CONDITIONS,
                 split: str = 'train',
                 img_suffix: str = '_rgb_anon.png',
                 seg_map_suffix: str = '_gt_labelTrainIds.png',
                 data_prefix: dict = dict(
                     img_path='rgb_anon', seg_map_path='gt'),
                 **kwargs) -> None:
        self.conditions = self._check_conditions(conditions)
        check_choice('split', split, ACDC_SPLITS, type(self).__name__)
        self.split = split
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            **kwargs)

    def _check_conditions(self, conditions) -> tuple:
        """``conditions`` as a tuple; unknown, repeated or no conditions
        are refused, naming the value at fault."""
        owner = type(self).__name__
        if isinstance(conditions, str):
            conditions = (conditions, )
        conditions = tuple(conditions)
        if not conditions:
            raise ValueError(f'{owner}: conditions is empty; ACDC has '
                             f'{ACDC_CONDITIONS}')
        for condition in conditions:
            if condition not in ACDC_CONDITIONS:
                raise ValueError(
                    f'{owner}: unknown condition {condition!r} in '
                    f'conditions={conditions}; ACDC has {ACDC_CONDITIONS}')
            if conditions.count(condition) > 1:
                raise ValueError(f'{owner}: condition {condition!r} is given '
                                 f'twice in conditions={conditions}')
        return conditions

    def load_data_list(self) -> List[dict]:
        """The images of ``split`` under each condition, sorted by path,
        with their labels when ``data_prefix`` has ``seg_map_path``."""
        img_root = self.data_prefix['img_path']
        ann_root = self.data_prefix.get('seg_map_path')
        data_list = []
        for condition in self.conditions:
            data_list += self._condition_list(condition, img_root, ann_root)
        missing = [info['seg_map_path'] for info in data_list
                   if 'seg_map_path' in info
                   and not osp.isfile(info['seg_map_path'])]
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} image(s) have no '
                f'label file, e.g. {missing[0]!r}')
        return sorted(data_list, key=lambda info: info['img_path'])

    def _condition_list(self, condition: str, img_root: str,
                        ann_root: str) -> List[dict]:
        sub_dir = osp.join(condition, self.split)
        img_dir = osp.join(img_root, sub_dir)
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{type(self).__name__}: no folder {img_dir!r} for condition '
                f'{condition!r}, split {self.split!r} (data_root='
                f'{self.data_root!r}; ACDC keeps its images in rgb_anon/'
                '<condition>/<split>/<sequence>/)')
        data_list = []
        for img in fileio.list_dir_or_file(
                dir_path=img_dir, list_dir=False, suffix=self.img_suffix,
                recursive=True, backend_args=self.backend_args):
            rel = osp.join(sub_dir, img)
            info = dict(
                img_path=osp.join(img_root, rel),
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[])
            if ann_root is not None:
                info['seg_map_path'] = osp.join(
                    ann_root, rel[:-len(self.img_suffix)] +
                    self.seg_map_suffix)
            data_list.append(info)
        if not data_list:
            raise FileNotFoundError(
                f'{type(self).__name__}: no "*{self.img_suffix}" images '
                f'under {img_dir!r}')
        return data_list
