"""Random Gaussian blur and sensor noise, drawn per image."""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomBlurNoise(BaseTransform):
    """Blurs an image and adds Gaussian noise, each to a random degree.

    With probability ``blur_prob`` the image is blurred with a Gaussian of
    sigma ``~ U(0, max_sigma)`` pixels; then, with probability
    ``noise_prob``, noise of standard deviation ``~ U(0, max_std)`` (in
    pixel values, 0-255) is added and the result clipped to uint8. Every
    image gets its own degree, so that a network's errors, and its
    calibration, vary from image to image -- what the value head (stage 2)
    must learn to tell apart. Together with MMSeg's
    ``PhotoMetricDistortion`` it makes the generic corruption family the
    lab's ``value_head_shift --augment photometric`` puts in stage 2.

    Required keys: ``img``. Modified key: ``img``.

    Args:
        blur_prob (float): Probability of the blur. Defaults to 0.5.
        max_sigma (float): Upper end of the blur's sigma, in pixels.
            Defaults to 2.0.
        noise_prob (float): Probability of the noise. Defaults to 0.5.
        max_std (float): Upper end of the noise's standard deviation.
            Defaults to 12.0.
    """

    def __init__(self,
                 blur_prob: float = 0.5,
                 max_sigma: float = 2.0,
                 noise_prob: float = 0.5,
                 max_std: float = 12.0) -> None:
        for name, value in dict(blur_prob=blur_prob,
                                noise_prob=noise_prob).items():
            if not 0 <= value <= 1:
                raise ValueError(f'RandomBlurNoise: {name} must lie in '
                                 f'[0, 1], got {value}')
        for name, value in dict(max_sigma=max_sigma, max_std=max_std).items():
            if value < 0:
                raise ValueError(f'RandomBlurNoise: {name} must be >= 0, '
                                 f'got {value}')
        self.blur_prob = blur_prob
        self.max_sigma = max_sigma
        self.noise_prob = noise_prob
        self.max_std = max_std

    def transform(self, results: dict) -> Optional[dict]:
        """Blurs and noises ``results['img']`` (H x W x C, uint8).

        Args:
            results (dict): With ``img``.

        Returns:
            dict: ``results``, its ``img`` changed or not.
        """
        img = results['img']
        sigma = np.random.uniform(0, self.max_sigma)
        if np.random.rand() < self.blur_prob and sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        if np.random.rand() < self.noise_prob:
            noise = np.random.normal(0, np.random.uniform(0, self.max_std),
                                     img.shape)
            img = np.clip(img.astype(np.float32) + noise, 0,
                          255).astype(np.uint8)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(blur_prob={self.blur_prob}, '
                f'max_sigma={self.max_sigma}, noise_prob={self.noise_prob}, '
                f'max_std={self.max_std})')
