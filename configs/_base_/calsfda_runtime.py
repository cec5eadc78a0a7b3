# MMSeg's runtime plus the plugin import every Cal-SFDA config needs.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmseg_calsfda'], allow_failed_imports=False)
default_scope = 'mmseg'
