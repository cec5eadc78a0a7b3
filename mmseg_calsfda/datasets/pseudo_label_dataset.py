import os.path as osp
from typing import Optional, Sequence, Union

from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDatasetMixin


def pseudo_label_path(pseudo_label_dir: str, img_path: str, img_dir: str,
                      img_suffix: Union[str, Sequence[str]]) -> str:
    """Where the pseudo-label PNG of ``img_path`` lives: its path relative
    to ``img_dir``, without its suffix (the first of ``img_suffix`` it
    ends with, in any case), plus ``.png``."""
    rel = osp.relpath(img_path, img_dir)
    suffixes = (img_suffix, ) if isinstance(img_suffix, str) else img_suffix
    for suffix in suffixes:
        if rel.lower().endswith(suffix.lower()):
            rel = rel[:-len(suffix)]
            break
    return osp.join(pseudo_label_dir, rel + '.png')


class PseudoLabelMixin:
    """Pairs the images a dataset lists with the current round's
    pseudo-labels.

    Mixed in front of a segmentation dataset class that lists target images
    without labels (no ``seg_map_path`` in ``data_prefix``):
    :class:`PseudoLabelDataset` (Cityscapes-style folders),
    :class:`PseudoLabelFolderDataset` (any folder of images) and
    :class:`ACDCPseudoLabelDataset` (ACDC's conditions). Pseudo-labels are
    already in the model's class space, so no ``label_map`` applies even
    when ``metainfo`` selects a subset of classes (SYNTHIA's 16). Each
    sample's label is ``<pseudo_label_dir>/<image path relative to
    data_prefix.img_path, without img_suffix>.png``
    (:func:`pseudo_label_path`), where the pseudo-label pass of
    ``SelfTrainingHook`` writes it; the hook sets :attr:`pseudo_label_dir`
    to the finished round's folder at the start of every round.

    Args:
        pseudo_label_dir (str, optional): Folder of pseudo-label PNGs.
        **kwargs: Arguments of the dataset class it is mixed into.
    """

    def __init__(self, *args, pseudo_label_dir: Optional[str] = None,
                 **kwargs) -> None:
        self.pseudo_label_dir = pseudo_label_dir
        super().__init__(*args, **kwargs)

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if self.pseudo_label_dir is None:
            raise RuntimeError(
                f'{self.__class__.__name__} has no pseudo-labels yet: '
                'pseudo_label_dir is unset (SelfTrainingHook sets it when a '
                'round starts)')
        info['label_map'] = None
        info['seg_map_path'] = pseudo_label_path(
            self.pseudo_label_dir, info['img_path'],
            self.data_prefix['img_path'], self.img_suffix)
        return info


@DATASETS.register_module()
class PseudoLabelDataset(PseudoLabelMixin, CheckedSegDatasetMixin,
                         CityscapesDataset):
    """Unlabelled Cityscapes-style target images paired with the current
    round's pseudo-labels.

    The images are listed like :class:`CityscapesDataset` (every
    ``*<img_suffix>`` under ``data_prefix.img_path``; no ``seg_map_path``:
    the target's labels are never read); ``img_suffix`` lists other
    layouts' images (``'_rgb_anon.png'`` for Dark Zurich, ``'.jpg'`` for
    BDD100K). How the labels are found: :class:`PseudoLabelMixin`.

    Args:
        pseudo_label_dir (str, optional): Folder of pseudo-label PNGs.
        **kwargs: Arguments of :class:`CityscapesDataset`.
    """
