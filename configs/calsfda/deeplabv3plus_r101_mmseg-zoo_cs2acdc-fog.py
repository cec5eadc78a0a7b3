# Cal-SFDA stage 3 from MMSeg's model zoo: the Cityscapes DeepLabV3+ with
# the value head of deeplabv3plus_r101_mmseg-zoo_cityscapes_value.py,
# adapted to ACDC's fog images (deeplabv3plus_r101_cs2acdc.py with one
# condition; its validation, test and hooks read these dataloaders through
# '${key}' references, so they follow).
_base_ = ['./deeplabv3plus_r101_cs2acdc.py']

load_from = \
    'work_dirs/deeplabv3plus_r101_mmseg-zoo_cityscapes_value/best_ece_mse.pth'
train_dataloader = dict(dataset=dict(conditions=('fog', )))
pseudo_label_dataloader = dict(dataset=dict(conditions=('fog', )))
estimation_dataloader = dict(dataset=dict(conditions=('fog', )))
report_dataloader = dict(dataset=dict(conditions=('fog', )))
