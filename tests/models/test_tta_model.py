"""CalSFDATTAModel: the merged prediction's probabilities and estimate."""
import torch
import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.structures import SegDataSample

from mmseg_calsfda.models.segmentors import CalSFDATTAModel


def augmented(logits, estimates):
    """One image's predictions under several augmentations."""
    samples = []
    for logit, est in zip(logits, estimates):
        sample = SegDataSample(metainfo=dict(img_path='a.png'))
        sample.seg_logits = PixelData(data=logit)
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, 4, 5).long())
        if est is not None:
            sample.set_metainfo(dict(est_ece=torch.tensor(est)))
        samples.append(sample)
    return samples


class Segmentor(nn.Module):
    """What merge_preds reads of the wrapped segmentor."""

    def __init__(self, out_channels):
        super().__init__()
        self.out_channels = out_channels
        self.decode_head = nn.Module()
        self.decode_head.threshold = 0.5

    def test_step(self, data):
        raise AssertionError('merge_preds only')


def test_merged_logits_give_the_mean_probabilities():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 4, 5) * 4
    tta = CalSFDATTAModel(module=Segmentor(6))
    (merged, ) = tta.merge_preds([augmented(logits, [0.1, 0.2, 0.6])])
    probs = logits.softmax(dim=1).mean(0)
    torch.testing.assert_close(merged.seg_logits.data.softmax(dim=0), probs)
    assert torch.equal(merged.pred_sem_seg.data[0], probs.argmax(0))
    assert float(merged.est_ece) == torch.tensor([0.1, 0.2, 0.6]).mean()
    assert merged.gt_sem_seg.data.shape == (1, 4, 5)
    # MMSeg's SegTTAModel keeps the last augmentation's logits, which the
    # calibration metrics would read
    (plain, ) = SegTTAModel(module=Segmentor(6)).merge_preds(
        [augmented(logits, [0.1, 0.2, 0.6])])
    assert torch.equal(plain.seg_logits.data, logits[-1])
    assert float(plain.est_ece) == torch.tensor(0.6)


def test_without_value_head_and_one_channel():
    logits = torch.randn(2, 1, 4, 5)
    tta = CalSFDATTAModel(module=Segmentor(1))
    (merged, ) = tta.merge_preds([augmented(logits, [None, None])])
    assert 'est_ece' not in merged
    torch.testing.assert_close(merged.seg_logits.data.sigmoid(),
                               logits.sigmoid().mean(0))
