# SegFormer with MiT-B2: MMSeg's own network, B0's model file with B2's
# sizes and ImageNet weights, as mmseg::segformer/
# segformer_mit-b2_8xb1-160k_cityscapes-1024x1024.py sets them.
_base_ = 'mmseg::_base_/models/segformer_mit-b0.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 4, 6, 3],
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/'
            'pretrain/segformer/mit_b2_20220624-66e8bf70.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
