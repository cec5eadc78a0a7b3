from typing import List

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor


@MODELS.register_module()
class CalSFDATTAModel(SegTTAModel):
    """MMSeg's test-time augmentation (``tools/test.py --tta``), with the
    merged prediction's probabilities for the calibration metrics.

    :class:`SegTTAModel` averages the augmentations' class probabilities
    into ``pred_sem_seg`` but leaves the *last* augmentation's
    ``seg_logits`` (and metainfo) in the merged sample, so ``ECEMetric``,
    ``ConfidenceMetric`` and ``EstimatedECEMetric(with_labels=True)`` would
    measure one flipped, rescaled view instead of the prediction scored by
    ``IoUMetric``. Here the merged sample's ``seg_logits`` are the log of
    the averaged probabilities (their softmax gives those probabilities
    back; sigmoid for one output channel), and ``est_ece`` (the value
    head's estimate, a fraction, if the module has one) is the mean of the
    augmentations' estimates.

    Args:
        module (dict | nn.Module): The segmentor, e.g. a
            :class:`CalSFDASegmentor`.
        **kwargs: Arguments of :class:`SegTTAModel`.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merges the predictions of each image's augmentations.

        Args:
            data_samples_list (list[list[SegDataSample]]): Per image, the
                predictions of its augmentations.

        Returns:
            list[SegDataSample]: One merged prediction per image.
        """
        merged_logits = [self._merged_logits(s) for s in data_samples_list]
        estimates = [self._merged_estimate(s) for s in data_samples_list]
        predictions = super().merge_preds(data_samples_list)
        for sample, logits, estimate in zip(predictions, merged_logits,
                                            estimates):
            sample.set_data({'seg_logits': PixelData(data=logits)})
            if estimate is not None:
                sample.set_metainfo(dict(est_ece=estimate))
        return predictions

    def _merged_logits(self, data_samples: SampleList) -> Tensor:
        """Logits whose softmax (sigmoid) is the mean of the
        augmentations' probabilities."""
        logits = torch.stack([s.seg_logits.data for s in data_samples])
        if self.module.out_channels > 1:
            probs = logits.softmax(dim=1).mean(0)
            return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
        probs = logits.sigmoid().mean(0)
        return torch.logit(probs, eps=torch.finfo(probs.dtype).eps)

    @staticmethod
    def _merged_estimate(data_samples: SampleList):
        """The mean ``est_ece`` of the augmentations, or None without a
        value head."""
        if not all('est_ece' in s for s in data_samples):
            return None
        return torch.stack([
            torch.as_tensor(s.est_ece).float() for s in data_samples
        ]).mean()
