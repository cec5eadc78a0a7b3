# Cal-SFDA stage 3 with DeepLabV3+ (EfficientNet-Lite0): GTA5 -> Cityscapes
# (../_base_/calsfda/target_gta2cs.py). The auxiliary FCN head is off here
# (auxiliary_losses='off' in the recipe).
_base_ = [
    '../_base_/models/deeplabv3plus_efficientnet-lite0.py',
    '../_base_/calsfda/target_gta2cs.py'
]

load_from = 'work_dirs/deeplabv3plus_efficientnet-lite0_gta5_value/' \
    'best_ece_mse.pth'
model = _base_.calsfda_model
