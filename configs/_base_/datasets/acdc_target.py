# ACDC (https://acdc.vision.ee.ethz.ch/; fog, night, rain, snow; the 19
# Cityscapes classes) as the unlabelled target of stage 3. Only the train
# images are adapted to; the val labels are read for the report only.
# data/acdc/ holds rgb_anon/ and gt/ as unpacked from
# rgb_anon_trainvaltest.zip and gt_trainval.zip:
#   rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
#   gt/<condition>/<split>/<sequence>/<name>_gt_labelTrainIds.png
# ../calsfda/target_cs2acdc.py puts these datasets into the dataloaders of
# cityscapes_target.py (their pipelines and settings stay). A subset of the
# conditions: set `conditions` in every dataloader of a child config, as
# configs/calsfda/deeplabv3plus_r101_mmseg-zoo_cs2acdc-fog.py does.
acdc_conditions = ('fog', 'night', 'rain', 'snow')
target_data = dict(
    # the train images with the current round's pseudo-labels
    train=dict(
        type='ACDCPseudoLabelDataset',
        data_root='data/acdc/',
        data_prefix=dict(img_path='rgb_anon'),
        conditions=acdc_conditions,
        split='train'),
    # the train images, unlabelled: pseudo-label pass, BN warm-up and the
    # subset of label-free selection
    images=dict(
        type='ACDCDataset',
        data_root='data/acdc/',
        data_prefix=dict(img_path='rgb_anon'),
        conditions=acdc_conditions,
        split='train'),
    # labelled val (406 images over the four conditions), reporting only
    report=dict(
        type='ACDCDataset',
        data_root='data/acdc/',
        data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
        conditions=acdc_conditions,
        split='val'))
