# Cal-SFDA stage 2 with OCRNet (HRNetV2-W18): the value head on the OCR
# head's class probabilities (../_base_/calsfda/value_gta5.py).
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py', '../_base_/calsfda/value_gta5.py'
]

load_from = 'work_dirs/ocrnet_hr18_gta5_source/best_cECE.pth'
model = _base_.calsfda_model
