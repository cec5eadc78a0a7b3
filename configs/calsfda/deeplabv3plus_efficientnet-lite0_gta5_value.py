# Cal-SFDA stage 2 with DeepLabV3+ (EfficientNet-Lite0): the value head on
# the ASPP head's class probabilities (../_base_/calsfda/value_gta5.py).
_base_ = [
    '../_base_/models/deeplabv3plus_efficientnet-lite0.py',
    '../_base_/calsfda/value_gta5.py'
]

load_from = 'work_dirs/deeplabv3plus_efficientnet-lite0_gta5_source/' \
    'best_cECE.pth'
model = _base_.calsfda_model
