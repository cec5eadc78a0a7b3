# Cal-SFDA stage 1 -- source pre-training on SYNTHIA (16 classes) with the
# differentiable ECE; keeps the checkpoint with the lowest class-level ECE.
# Same recipe as deeplabv2_r101_gta5_source.py; only the data differ.
_base_ = [
    './deeplabv2_r101_gta5_source.py', '../_base_/datasets/synthia_data.py'
]

train_dataloader = dict(dataset={{_base_.synthia_data}})
val_dataloader = dict(dataset={{_base_.synthia_data}})
test_dataloader = val_dataloader

model = dict(decode_head=dict(num_classes=16))
