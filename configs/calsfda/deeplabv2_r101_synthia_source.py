# Cal-SFDA stage 1 -- source pre-training on SYNTHIA (16 classes) with the
# differentiable ECE; keeps the checkpoint with the lowest class-level ECE.
# Same recipe as deeplabv2_r101_gta5_source.py, SYNTHIA data, 16 classes.
_base_ = [
    './deeplabv2_r101_gta5_source.py', '../_base_/datasets/synthia.py'
]

model = dict(decode_head=dict(num_classes=16))
