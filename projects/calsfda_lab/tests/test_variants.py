"""calsfda_lab.variants' components on small tensors."""
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import calsfda_lab  # noqa: F401  (registers the lab's components)
from mmseg_calsfda.calibration import classwise_ece, imagewise_ece


def tiny_segmentor(type_name):
    return MODELS.build(dict(
        type=type_name, stage='value',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='ResNetV1c', depth=18, num_stages=2,
                      out_indices=(1, ), strides=(1, 2), dilations=(1, 1),
                      base_channels=8, stem_channels=8),
        decode_head=dict(type='FCNHead', in_channels=16, channels=8,
                         num_convs=1, num_classes=4, in_index=0),
        value_head=dict(type='ECEValueNetHead', channels=8)))


def test_image_ece_segmentor_regresses_the_plain_image_ece():
    """Its value-head target is each image's plain ECE (the parent's is the
    class-level ECE) of the same logits against the same labels."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 8, generator=g) * 3
    labels = torch.randint(0, 4, (2, 12, 16), generator=g)
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label[None]))
               for label in labels]
    image_level = tiny_segmentor('ImageECESegmentor')
    class_level = tiny_segmentor('CalSFDASegmentor')
    resized, label = class_level.logits_at_labels(logits, samples)
    assert resized.shape == (2, 4, 12, 16) and torch.equal(label, labels)
    target = image_level.true_ece(logits, samples)
    assert torch.allclose(target, imagewise_ece(resized, labels))
    assert torch.allclose(class_level.true_ece(logits, samples),
                          classwise_ece(resized, labels))
    assert not torch.allclose(target, class_level.true_ece(logits, samples))
