# Cal-SFDA stage 3 with DeepLabV3+ (ResNetV1c-101): Cityscapes -> Dark Zurich
# (../_base_/calsfda/target_cs2darkzurich.py), from the Cityscapes stage 2.
_base_ = [
    '../_base_/models/deeplabv3plus_r101-d8.py',
    '../_base_/calsfda/target_cs2darkzurich.py'
]

load_from = 'work_dirs/deeplabv3plus_r101_cityscapes_value/best_ece_mse.pth'
model = _base_.calsfda_model
