# Stage 3 with SegFormer (MiT-B2): GTA5 -> Cityscapes adaptation; same
# recipe as deeplabv2_gta2cs.py.
_base_ = [
    './deeplabv2_gta2cs.py', '../_base_/models/segformer_mit-b2_parts.py'
]

load_from = 'work_dirs/segformer_mit-b2_gta5_value/best_ece_mse.pth'
model = dict(
    backbone={{_base_.mit_b2_backbone_from_checkpoint}},
    decode_head={{_base_.segformer_head}})
