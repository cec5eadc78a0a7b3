# Stage 1 with SegFormer (MiT-B2) instead of DeepLabV2-R101: the same recipe
# as deeplabv2_r101_gta5_source.py (CE + DiffECE, lowest-cECE checkpoint);
# only the network (and SegFormer's usual AdamW) differ.
_base_ = [
    './deeplabv2_r101_gta5_source.py',
    '../_base_/models/segformer_mit-b2_parts.py'
]

model = dict(
    pretrained=None,
    backbone={{_base_.mit_b2_backbone}},
    decode_head={{_base_.segformer_head}})
optim_wrapper = {{_base_.segformer_optim_wrapper}}
