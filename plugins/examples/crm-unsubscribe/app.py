"""Component entry of crm-unsubscribe (componentize-py builds `app`).

The logic lives in plugin.py; see plugins/sdk/python/README.md.
"""

from plugin import transform
from wasmhook_plugin import export

WitWorld = export(transform)
