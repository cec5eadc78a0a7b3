# Parts for swapping DeepLabV2-R101 for SegFormer (MiT-B2 + SegformerHead) in
# any Cal-SFDA stage config: inherit the stage config and this file, then
#   model = dict(pretrained=None, backbone={{_base_.mit_b2_backbone}},
#                decode_head={{_base_.segformer_head}})
# Everything else of the stage (losses, value head, hooks) stays as it is:
# the value head reads the decode head's class probabilities, whatever the
# backbone.
mit_b2_backbone = dict(
    _delete_=True,
    type='MixVisionTransformer',
    in_channels=3,
    embed_dims=64,
    num_stages=4,
    num_layers=[3, 4, 6, 3],
    num_heads=[1, 2, 5, 8],
    patch_sizes=[7, 3, 3, 3],
    sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3),
    mlp_ratio=4,
    qkv_bias=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.1,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/'
        'pretrain/segformer/mit_b2_20220624-66e8bf70.pth'))
segformer_head = dict(
    type='SegformerHead',
    in_channels=[64, 128, 320, 512],
    in_index=[0, 1, 2, 3],
    channels=256,
    dropout_ratio=0.1,
    norm_cfg=dict(type='SyncBN', requires_grad=True))
segformer_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.),
            norm=dict(decay_mult=0.),
            head=dict(lr_mult=10.))))
# later stages start from load_from: no ImageNet download
mit_b2_backbone_from_checkpoint = dict(mit_b2_backbone, init_cfg=None)
