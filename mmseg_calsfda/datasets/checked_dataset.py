import os.path as osp
from typing import List

from mmseg.datasets import BaseSegDataset


class CheckedSegDatasetMixin:
    """Fails early, naming the config key and path, on a missing data root,
    an empty image folder or images without labels.

    Mixed in front of an MMSeg dataset class; runs after its
    ``load_data_list``.
    """

    def load_data_list(self) -> List[dict]:
        for key in ('img_path', 'seg_map_path'):
            path = self.data_prefix.get(key)
            if path and not osp.isdir(path):
                raise FileNotFoundError(
                    f'{self.__class__.__name__}: data_prefix.{key} resolves '
                    f'to {path!r}, which is not a directory (data_root='
                    f'{self.data_root!r})')
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f'{self.__class__.__name__}: no "*{self.img_suffix}" images '
                f'under {self.data_prefix.get("img_path")!r}')
        missing = [
            info['seg_map_path'] for info in data_list
            if 'seg_map_path' in info and not osp.isfile(info['seg_map_path'])
        ]
        if missing:
            raise FileNotFoundError(
                f'{self.__class__.__name__}: {len(missing)} image(s) have no '
                f'label file, e.g. {missing[0]!r}')
        return data_list


class CheckedSegDataset(CheckedSegDatasetMixin, BaseSegDataset):
    """:class:`BaseSegDataset` with the checks of
    :class:`CheckedSegDatasetMixin`."""
