# Nighttime Driving (http://people.ee.ethz.ch/~daid/NightDriving/; the 19
# Cityscapes classes, coarse labels) as the unlabelled target of stage 3.
# Its download is the test set (NighttimeDrivingTest.zip, 50 night images):
# stage 3 adapts to these images without their labels and reports on them
# with the labels (test-time adaptation; the labels never reach training or
# the checkpoint selection). Unpacked into data/NighttimeDrivingTest/
# (MMSeg's NightDrivingDataset):
#   leftImg8bit/test/night/<name>_leftImg8bit.png
#   gtCoarse_daytime_trainvaltest/test/night/<name>_gtCoarse_labelTrainIds.png
# ../calsfda/target_cs2nightdriving.py puts these datasets into the
# dataloaders of cityscapes_target.py (their pipelines and settings stay).
target_data = dict(
    # the images with the current round's pseudo-labels
    train=dict(
        type='PseudoLabelDataset',
        data_root='data/NighttimeDrivingTest/',
        data_prefix=dict(img_path='leftImg8bit/test/night')),
    # the images, unlabelled: pseudo-label pass, BN warm-up and the subset
    # of label-free selection
    images=dict(
        type='NightDrivingDataset',
        data_root='data/NighttimeDrivingTest/',
        data_prefix=dict(img_path='leftImg8bit/test/night')),
    # the same images with their coarse labels, reporting only
    report=dict(
        type='NightDrivingDataset',
        data_root='data/NighttimeDrivingTest/',
        data_prefix=dict(
            img_path='leftImg8bit/test/night',
            seg_map_path='gtCoarse_daytime_trainvaltest/test/night')))
