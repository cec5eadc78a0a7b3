# Dark Zurich (https://www.trace.ethz.ch/publications/2019/GCMA_UIoU/; the
# 19 Cityscapes classes) as the unlabelled target of stage 3: its night
# train images (Dark_Zurich_train_anon.zip) are adapted to; the labelled
# night val images (Dark_Zurich_val_anon.zip, 50) are read for the report
# only. Both unpacked into data/dark_zurich/ (MMSeg's DarkZurichDataset):
#   rgb_anon/train/night/<sequence>/<name>_rgb_anon.png
#   rgb_anon/val/night/<sequence>/<name>_rgb_anon.png
#   gt/val/night/<sequence>/<name>_gt_labelTrainIds.png
# ../calsfda/target_cs2darkzurich.py puts these datasets into the
# dataloaders of cityscapes_target.py (their pipelines and settings stay).
target_data = dict(
    # the train images with the current round's pseudo-labels
    train=dict(
        type='PseudoLabelDataset',
        data_root='data/dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/train/night'),
        img_suffix='_rgb_anon.png'),
    # the train images, unlabelled: pseudo-label pass, BN warm-up and the
    # subset of label-free selection
    images=dict(
        type='DarkZurichDataset',
        data_root='data/dark_zurich/',
        data_prefix=dict(img_path='rgb_anon/train/night')),
    # labelled night val, reporting only
    report=dict(
        type='DarkZurichDataset',
        data_root='data/dark_zurich/',
        data_prefix=dict(
            img_path='rgb_anon/val/night', seg_map_path='gt/val/night')))
