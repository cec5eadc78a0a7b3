import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple, Union

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .label_maps import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from .pseudo_label_dataset import pseudo_label_path
from .random_subset import RandomSubsetMixin

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


def as_suffixes(img_suffix: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """``img_suffix`` as a tuple of lower-case suffixes."""
    suffixes = (img_suffix, ) if isinstance(img_suffix, str) else tuple(
        img_suffix)
    if not suffixes or not all(isinstance(s, str) and s for s in suffixes):
        raise ValueError('img_suffix must be a suffix or a sequence of '
                         f'them, got {img_suffix!r}')
    return tuple(s.lower() for s in suffixes)


def scan_images(folder: str, suffixes: Sequence[str]) -> List[str]:
    """Paths of the files under ``folder`` (recursively, following links)
    whose name ends with one of ``suffixes`` (any case), sorted; hidden
    files and folders (``.name``) are left out."""
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        found.extend(
            osp.join(root, name) for name in files
            if not name.startswith('.') and name.lower().endswith(suffixes))
    return sorted(found)


@DATASETS.register_module()
class ImageFolderDataset(RandomSubsetMixin, BaseSegDataset):
    """Unlabelled images anywhere under one folder: the target images of
    stage 3 when they are a plain folder (frames of a dash-cam, a photo
    collection), with no labels and no naming scheme.

    Every file under ``data_root`` (joined with ``data_prefix.img_path``),
    in every sub-folder, whose name ends with one of ``img_suffix`` (in any
    case: ``.jpg`` also finds ``IMG_1.JPG``) is an image; sorted by path.
    Hidden files and folders are skipped. No sample has a label. The
    classes are the model's (Cityscapes' 19 by default, as a GTA5 source
    model predicts; ``metainfo=dict(classes=...)`` for another source).

    Pseudo-labels of an image are named after its path relative to the
    folder, without its suffix (``clip_a/frame_0001.jpg`` ->
    ``clip_a/frame_0001.png``), so two images that differ only in their
    suffix are refused.

    Args:
        img_suffix (str | Sequence[str]): Suffix(es) of the images.
            Defaults to ``('.jpg', '.jpeg', '.png')``.
        data_prefix (dict): ``img_path`` below ``data_root``. Defaults to
            ``dict(img_path='')``: the root itself.
        subset (dict, optional): A seeded random sample
            (:class:`RandomSubsetMixin`). Defaults to None: every image.
        **kwargs: Arguments of :class:`BaseSegDataset`.
    """
    METAINFO = dict(classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE)

    def __init__(self,
                 img_suffix: Union[str, Sequence[str]] = IMAGE_SUFFIXES,
                 data_prefix: Dict[str, str] = dict(img_path=''),
                 **kwargs) -> None:
        as_suffixes(img_suffix)  # refuse a bad one before any scan
        super().__init__(
            img_suffix=img_suffix, data_prefix=data_prefix, **kwargs)

    @property
    def image_folder(self) -> str:
        """The folder the images are listed from."""
        return self.data_prefix.get('img_path') or ''

    def load_data_list(self) -> List[dict]:
        name, folder = self.__class__.__name__, self.image_folder
        if not folder:
            raise ValueError(f'{name}: no folder given (data_root='
                             f'{self.data_root!r})')
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'{name}: the image folder {folder!r} does not exist or is '
                f'not a directory (data_root={self.data_root!r})')
        suffixes = as_suffixes(self.img_suffix)
        paths = scan_images(folder, suffixes)
        if not paths:
            raise FileNotFoundError(
                f'{name}: no image ({", ".join(suffixes)}, any case) in '
                f'{folder!r} or its sub-folders; set img_suffix to the '
                'suffix your images have')
        self._check_unique_labels(paths, folder)
        return [
            dict(img_path=path, label_map=self.label_map,
                 reduce_zero_label=self.reduce_zero_label, seg_fields=[])
            for path in paths
        ]

    def _check_unique_labels(self, paths: List[str], folder: str) -> None:
        """Two images whose pseudo-labels would be one file are refused."""
        seen: Dict[str, str] = {}
        for path in paths:
            label = pseudo_label_path('', path, folder, self.img_suffix)
            if label in seen:
                raise ValueError(
                    f'{self.__class__.__name__}: {seen[label]!r} and '
                    f'{path!r} differ only in their suffix and would share '
                    f'the pseudo-label {label!r}; keep one of them, or list '
                    'one suffix in img_suffix')
            seen[label] = path
