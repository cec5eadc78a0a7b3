"""The lab's tests build MMSeg components in-process: the plugin's and the
lab's components registered, MMSeg's default scope set."""
from mmseg.utils import register_all_modules

import calsfda_lab  # noqa: F401  registers the plugin's and the lab's

register_all_modules(init_default_scope=True)
