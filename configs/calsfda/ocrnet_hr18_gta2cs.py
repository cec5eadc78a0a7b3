# Cal-SFDA stage 3 with OCRNet (HRNetV2-W18): GTA5 -> Cityscapes
# (../_base_/calsfda/target_gta2cs.py). The pseudo-label losses replace the
# OCR head's; the cascade's first stage (FCN head) still runs, without a loss
# of its own (auxiliary_losses='off'; a list of losses trains it too).
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py', '../_base_/calsfda/target_gta2cs.py'
]

load_from = 'work_dirs/ocrnet_hr18_gta5_value/best_ece_mse.pth'
model = _base_.calsfda_model
