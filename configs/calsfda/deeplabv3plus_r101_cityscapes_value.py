# Cal-SFDA stage 2 with DeepLabV3+ (ResNetV1c-101) on Cityscapes: the value
# head on the ASPP head's class probabilities
# (../_base_/calsfda/value_cityscapes.py), from stage 1's checkpoint.
_base_ = [
    '../_base_/models/deeplabv3plus_r101-d8.py',
    '../_base_/calsfda/value_cityscapes.py'
]

load_from = 'work_dirs/deeplabv3plus_r101_cityscapes_source/best_cECE.pth'
model = _base_.calsfda_model
