# Cal-SFDA stage 1 recipe -- source pre-training on GTA5 with the
# differentiable ECE, for ANY network. A stage config inherits a network
# config (ours or MMSeg's, e.g. 'mmseg::_base_/models/pspnet_r50-d8.py') and
# this file, then sets  model = _base_.calsfda_model  (docs/any_network.md;
# configs/calsfda/deeplabv2_r101_gta5_source.py is the reference).
#   loss = the network's own losses (CE; auxiliary heads as it defines them)
#          + 1.0 * DiffECE (class-level ECE, LogSumExp confidence, t=1e-5) on
#          the final semantic logits
#   validation on a labelled GTA5 split: mIoU + ECE/cECE
#   keeps the checkpoint with the LOWEST class-level ECE (best_cECE_iter_N.pth,
#   linked as best_cECE.pth) and writes selection.json (selected/oracle/last)
# Next stage: value_gta5.py.
_base_ = [
    '../datasets/gta5.py', '../calsfda_runtime.py',
    '../schedules/source_40k.py'
]

# merged into the network's model dict by the stage config
calsfda_model = dict(
    type='CalSFDASegmentor',  # also for CascadeEncoderDecoder networks
    stage='source',
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # appended to the loss_decode of the head that makes the final logits
    calibration_loss=dict(
        type='DiffECELoss',
        n_bins=10,
        temperature=1e-5,
        class_average='all',
        loss_weight=1.0),
    calibrate_auxiliary=False)  # True: DiffECE on auxiliary heads too

# ECE-based source checkpoint selection; lower is better.
default_hooks = dict(
    checkpoint=dict(
        type='ECECheckpointHook',
        by_epoch=False,
        interval=4000,
        max_keep_ckpts=1,
        save_best='cECE',
        rule='less',
        report_key='mIoU'))
