# Cal-SFDA stage 2 on SYNTHIA (16 classes): the value net, trained on the
# labelled SYNTHIA source; same recipe as deeplabv2_r101_gta5_value.py.
_base_ = [
    './deeplabv2_r101_gta5_value.py', '../_base_/datasets/synthia_data.py'
]

load_from = 'work_dirs/deeplabv2_r101_synthia_source/best_cECE.pth'

train_dataloader = dict(dataset={{_base_.synthia_data}})
val_dataloader = dict(dataset={{_base_.synthia_data}})
test_dataloader = val_dataloader

model = dict(decode_head=dict(num_classes=16))
