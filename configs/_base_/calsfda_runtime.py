# MMSeg's runtime plus the plugin import every Cal-SFDA config needs.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmseg_calsfda'], allow_failed_imports=False)
default_scope = 'mmseg'
# resume continues a stage even though its config names the previous
# stage's checkpoint in load_from (see mmseg_calsfda.engine.CalSFDARunner)
runner_type = 'CalSFDARunner'
# tools/test.py --tta: MMSeg's SegTTAModel, with the merged prediction's
# probabilities (and mean estimated ECE) for the calibration metrics; the
# dataset configs give the tta_pipeline
tta_model = dict(type='CalSFDATTAModel')
