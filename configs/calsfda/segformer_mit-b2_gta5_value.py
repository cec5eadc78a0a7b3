# Stage 2 with SegFormer (MiT-B2): the value head on SegformerHead's class
# probabilities; same recipe as deeplabv2_r101_gta5_value.py.
_base_ = [
    './deeplabv2_r101_gta5_value.py',
    '../_base_/models/segformer_mit-b2_parts.py'
]

load_from = 'work_dirs/segformer_mit-b2_gta5_source/best_cECE.pth'
model = dict(
    pretrained=None,
    backbone={{_base_.mit_b2_backbone_from_checkpoint}},
    decode_head={{_base_.segformer_head}})
