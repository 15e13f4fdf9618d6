"""Component entry of the {{name}} plugin (componentize-py builds `app`).

Keep it as is: the logic lives in plugin.py, which is unit-tested without
the component bindings.
"""

from plugin import transform
from wasmhook_plugin import export

WitWorld = export(transform)
