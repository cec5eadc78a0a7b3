"""Class-conditional appearance shift for training the value head."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ClassConditionalColorShift(BaseTransform):
    """Moves the colour of some classes towards that of other classes.

    Per image (with probability ``prob``) a share ``b ~ U(0, max_share)`` is
    drawn; every class present in the label map is, with probability
    ``class_prob``, given a random *partner* among the other present classes,
    and its pixels are moved by ``b * (mean_partner - mean_class)`` (mean
    colours of the image's pixels of either class; texture and shading
    stay). Unlike a photometric distortion, no per-channel statistic of the
    image undoes it: the segmentor becomes wrong, or unsure, on some classes
    of some images, to a degree that varies from image to image -- what the
    value head (stage 2) must learn to recognise in the class probabilities.
    It needs a label map: the labelled source stages, or pseudo-labels
    (``calsfda_lab.experiments.stage3_variants``, variant ``ccaug``; unlabelled
    pixels, ``ignore_index``, are neither shifted nor partners).

    Required keys: ``img``, ``gt_seg_map``. Modified key: ``img``.

    Args:
        prob (float): Probability that an image is shifted. Defaults to 0.5.
        max_share (float): Upper end of the per-image share, in [0, 1].
            Defaults to 0.8.
        class_prob (float): Probability that a present class is shifted.
            Defaults to 0.5.
        min_pixels (int): Classes with fewer pixels in the image are neither
            shifted nor partners. Defaults to 16.
        ignore_index (int): Label of unlabelled pixels. Defaults to 255.
    """

    def __init__(self,
                 prob: float = 0.5,
                 max_share: float = 0.8,
                 class_prob: float = 0.5,
                 min_pixels: int = 16,
                 ignore_index: int = 255) -> None:
        for name, value in dict(prob=prob, max_share=max_share,
                                class_prob=class_prob).items():
            if not 0 <= value <= 1:
                raise ValueError(f'ClassConditionalColorShift: {name} must '
                                 f'lie in [0, 1], got {value}')
        self.prob = prob
        self.max_share = max_share
        self.class_prob = class_prob
        self.min_pixels = min_pixels
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> Optional[dict]:
        """Shifts ``results['img']`` in place of the original.

        Args:
            results (dict): With ``img`` (H x W x C) and ``gt_seg_map``
                (H x W) of the same size.

        Returns:
            dict: ``results``, its ``img`` shifted or unchanged.
        """
        img, seg = results['img'], results['gt_seg_map']
        if img.shape[:2] != seg.shape:
            raise ValueError(
                f'ClassConditionalColorShift: image {img.shape[:2]} and '
                f'label map {seg.shape} of {results.get("img_path")} differ '
                'in size; put it after LoadAnnotations and before any '
                'transform that changes one of them alone')
        if np.random.rand() >= self.prob:
            return results
        classes, counts = np.unique(seg, return_counts=True)
        classes = classes[(classes != self.ignore_index)
                          & (counts >= self.min_pixels)]
        if len(classes) < 2:
            return results
        pixels = img.reshape(-1, img.shape[-1]).astype(np.float32)
        flat = seg.reshape(-1)
        means = {c: pixels[flat == c].mean(0) for c in classes}
        share = np.random.uniform(0, self.max_share)
        shifted = pixels.copy()
        for c in classes:
            if np.random.rand() >= self.class_prob:
                continue
            partner = np.random.choice(classes[classes != c])
            shifted[flat == c] += share * (means[partner] - means[c])
        results['img'] = np.clip(shifted, 0, 255).reshape(img.shape).astype(
            img.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'max_share={self.max_share}, class_prob={self.class_prob}, '
                f'min_pixels={self.min_pixels})')
