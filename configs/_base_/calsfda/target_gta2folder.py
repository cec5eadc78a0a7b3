# Cal-SFDA stage 3 on YOUR unlabelled images: a plain folder (any names,
# any sub-folders, no labels), for ANY network trained by source_gta5.py and
# value_gta5.py. The recipe is target_gta2cs.py's (rounds, pseudo-labels,
# losses, label-free selection by the estimated ECE); only the data differ:
#   * the images: every file under data_root whose suffix is in img_suffix
#     (ImageFolderDataset; pseudo-label training: PseudoLabelFolderDataset)
#   * every dataloader of the stage reads data_root and img_suffix through a
#     '${key}' reference, and the hooks and the validation read the
#     top-level dataloader keys the same way: overriding data_root (or
#     pseudo_label_dataloader, estimation_dataloader, ...) in a child config
#     or with --cfg-options reaches all of them (mmseg_calsfda.config_refs)
#   * the estimation subset, which also feeds both BatchNorm warm-ups, is a
#     seeded random sample of the images (subset=dict(size, seed)), not the
#     first N in sorted order (for video frames: a few seconds of one clip)
#   * no labelled report set: checkpoints are selected by the estimated ECE
#     alone; selection.json has no target mIoU. docs/your_data.md shows how
#     to add one.
# Walkthrough: docs/your_data.md
_base_ = ['./target_gta2cs.py']

# ---- the settings: the folder of target images and their suffix(es) ----
data_root = 'data/target_images/'
img_suffix = ('.jpg', '.jpeg', '.png')  # any case: '.jpg' finds IMG_1.JPG
# the label-free estimation subset (and the BatchNorm warm-ups' images)
estimation_subset = dict(size=500, seed=0)

# training on the current round's pseudo-labels
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=4,
    persistent_workers=False,  # workers must see each round's labels
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='PseudoLabelFolderDataset',
        data_root='${data_root}',
        img_suffix='${img_suffix}',
        pipeline=_base_.train_pipeline))
# every target image, once, in order: the pseudo-labelling pass
pseudo_label_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,  # read once per round, every round
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageFolderDataset',
        data_root='${data_root}',
        img_suffix='${img_suffix}',
        pipeline=_base_.unlabelled_pipeline))
# a fixed, seeded random sample of the target images: label-free model
# selection, and the images of both BatchNorm warm-ups
estimation_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageFolderDataset',
        data_root='${data_root}',
        img_suffix='${img_suffix}',
        subset='${estimation_subset}',
        pipeline=_base_.unlabelled_pipeline))
val_dataloader = '${estimation_dataloader}'
# no labelled report set (docs/your_data.md: how to add one)
report_dataloader = None
report_evaluator = None
test_dataloader = None
test_evaluator = None
test_cfg = None

custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        dataloader='${pseudo_label_dataloader}',
        bn_warmup_dataloader='${estimation_dataloader}'),
    dict(_base_.custom_hooks[1], dataloader='${estimation_dataloader}')
]
default_hooks = dict(
    checkpoint=dict(
        report_dataloader='${report_dataloader}',
        report_evaluator='${report_evaluator}'))
