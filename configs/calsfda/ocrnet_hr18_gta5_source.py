# Cal-SFDA stage 1 with OCRNet (HRNetV2-W18) on GTA5: the recipe of
# ../_base_/calsfda/source_gta5.py on MMSeg's OCRNet network, a cascade
# (CascadeEncoderDecoder, num_stages=2): FCN head -> OCR head. DiffECE goes
# on the OCR head, which makes the final logits.
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py', '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
