"""ClassMix between two labelled (or pseudo-labelled) training crops."""
import math
from typing import Sized

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ClassMix(BaseTransform):
    """Pastes the pixels of half the classes of another image onto this one.

    ClassMix (Olsson et al., WACV 2021), as DACS uses it, here between two
    images of the same set: of the classes labelled in the *other* image
    (``results['mix_results'][0]``), a random ``class_share`` (rounded up:
    half of 5 classes is 3, as in ClassMix) is chosen, and their labelled
    pixels replace this image's pixels and labels at the same places. With
    pseudo-labels, a confident pixel is then seen next to objects of another
    image: context it has not been predicted in. Only labelled pixels move
    (``ignore_index`` is never pasted), so a pasted object may come without
    its unlabelled rim. Images of different sizes are aligned at the top-left
    corner and mixed where they overlap. The other image is drawn uniformly
    from the whole set, so now and then it is another crop of the same
    image.

    Use it in :class:`mmseg.datasets.MultiImageMixDataset`'s ``pipeline``
    (which calls :meth:`get_indices` and fills ``mix_results``), after the
    wrapped dataset's crop, so that both images are training crops.

    Required keys: ``img``, ``gt_seg_map``, ``mix_results``.
    Modified keys: ``img``, ``gt_seg_map``.

    Args:
        prob (float): Probability that an image is mixed. Defaults to 1.0.
        class_share (float): Share of the other image's labelled classes
            that are pasted, in (0, 1]. Defaults to 0.5.
        ignore_index (int): Label of unlabelled pixels. Defaults to 255.
    """

    def __init__(self,
                 prob: float = 1.0,
                 class_share: float = 0.5,
                 ignore_index: int = 255) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'ClassMix: prob must lie in [0, 1], got {prob}')
        if not 0 < class_share <= 1:
            raise ValueError('ClassMix: class_share must lie in (0, 1], got '
                             f'{class_share}')
        self.prob = prob
        self.class_share = class_share
        self.ignore_index = ignore_index

    def get_indices(self, dataset: Sized) -> int:
        """One random index of ``dataset``: the image to paste from.

        Args:
            dataset: The wrapped dataset.

        Returns:
            int: The index.
        """
        return np.random.randint(0, len(dataset))

    def transform(self, results: dict) -> dict:
        """Pastes the chosen classes of ``mix_results[0]`` onto ``results``.

        Args:
            results (dict): With ``img`` (H x W x C), ``gt_seg_map`` (H x W)
                and ``mix_results`` (a list holding the other image's
                results dict).

        Returns:
            dict: ``results``, its ``img`` and ``gt_seg_map`` mixed or
            unchanged.
        """
        if not results.get('mix_results'):
            raise KeyError('ClassMix: no mix_results in the results of '
                           f'{results.get("img_path")}; use it inside '
                           'MultiImageMixDataset\'s pipeline')
        other = results['mix_results'][0]
        for sample in (results, other):
            if 'gt_seg_map' not in sample:
                raise KeyError(
                    f'ClassMix: no gt_seg_map for {sample.get("img_path")};'
                    ' load the (pseudo-)labels before mixing')
        if np.random.rand() >= self.prob:
            return results
        mask = self._paste_mask(other['gt_seg_map'])
        height = min(results['gt_seg_map'].shape[0], mask.shape[0])
        width = min(results['gt_seg_map'].shape[1], mask.shape[1])
        mask = mask[:height, :width]
        img, seg = results['img'].copy(), results['gt_seg_map'].copy()
        img[:height, :width][mask] = other['img'][:height, :width][mask]
        seg[:height, :width][mask] = other['gt_seg_map'][:height,
                                                         :width][mask]
        results['img'], results['gt_seg_map'] = img, seg
        return results

    def _paste_mask(self, seg: np.ndarray) -> np.ndarray:
        """Where the pixels to paste are.

        Args:
            seg (np.ndarray): The other image's label map (H x W).

        Returns:
            np.ndarray: H x W bool, True on a random ``class_share`` of the
            labelled classes (all False when ``seg`` labels none).
        """
        classes = np.unique(seg)
        classes = classes[classes != self.ignore_index]
        if len(classes) == 0:
            return np.zeros(seg.shape, dtype=bool)
        count = math.ceil(self.class_share * len(classes))
        chosen = np.random.choice(classes, count, replace=False)
        return np.isin(seg, chosen)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'class_share={self.class_share}, '
                f'ignore_index={self.ignore_index})')
