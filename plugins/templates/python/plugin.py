"""{{name}}: a wasmhook plugin in Python. See README.md.

Forwards each event it handles, as JSON, in one POST to the URL in config
`url`. Config `event` limits it to matching event names (a glob such as
`order.*`; default: every event the host routes here).

`transform(event, host)` returns Skip(reason) or Fire(requests), or raises
PluginError(message). It must stay pure: the standard library and
wasmhook_plugin only (plugins/sdk/python/README.md). Import every module at
the top of this file: inside the component, a module first imported at run
time is not found.
"""

from fnmatch import fnmatchcase

from wasmhook_plugin import Event, Fire, Host, PluginError, Request, Skip


def transform(event: Event, host: Host):
    """Skip events that do not match config `event`; POST the others to `url`."""
    pattern = host.config_or("event", "*")
    if not fnmatchcase(event.name, pattern):
        return Skip('event "%s" does not match "%s"' % (event.name, pattern))

    url = host.config_or("url", "")
    if not url.startswith(("https://", "http://")):
        raise PluginError("config url must be an absolute http(s) URL")

    host.info("forwarding %s %s" % (event.name, event.id))
    return Fire.one(Request.post(url).json(event.to_json()))
