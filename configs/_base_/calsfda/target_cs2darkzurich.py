# Cal-SFDA stage 3 recipe -- source-free adaptation Cityscapes -> Dark Zurich,
# for ANY network trained by source_cityscapes.py and value_cityscapes.py:
# target_gta2cs.py (self-training rounds, label-free selection by the
# estimated ECE, labelled report beside it) on the data of
# ../datasets/dark_zurich_target.py.
_base_ = ['./target_gta2cs.py', '../datasets/dark_zurich_target.py']

train_dataloader = dict(dataset={{_base_.target_data.train}})
pseudo_label_dataloader = dict(dataset={{_base_.target_data.images}})
estimation_dataloader = dict(dataset={{_base_.target_data.images}})
report_dataloader = dict(dataset={{_base_.target_data.report}})
# The validation, the test and the hooks read the dataloaders above through
# '${key}' references, resolved after every child config and --cfg-options
# override (mmseg_calsfda.config_refs; the GTA5 -> Cityscapes recipe gives
# them copies): a child config that changes one of the dataloaders above
# changes what they read too.
val_dataloader = '${estimation_dataloader}'
test_dataloader = '${report_dataloader}'
custom_hooks = [
    dict(_base_.custom_hooks[0], dataloader='${pseudo_label_dataloader}'),
    dict(_base_.custom_hooks[1], dataloader='${estimation_dataloader}')
]
default_hooks = dict(
    checkpoint=dict(report_dataloader='${report_dataloader}'))
