# Cal-SFDA stage 1 -- source pre-training on SYNTHIA (16 classes) with the
# differentiable ECE; keeps the checkpoint with the lowest class-level ECE.
# Same recipe as deeplabv2_r101_gta5_source.py; only the data differ
# (see configs/_base_/datasets/synthia.py).
_base_ = ['./deeplabv2_r101_gta5_source.py']

dataset_type = 'SynthiaDataset'
data_root = 'data/synthia/'
data_prefix = dict(img_path='RGB', seg_map_path='GT/LABELS')
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, data_prefix=data_prefix))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, data_prefix=data_prefix))
test_dataloader = val_dataloader

model = dict(decode_head=dict(num_classes=16))
