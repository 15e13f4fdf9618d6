"""crm-unsubscribe: when someone unsubscribes from email, unsubscribe the
address from all email in HubSpot (Communication Preferences API v4,
"unsubscribe from all"). See README.md.

Pure logic: imports only the standard library and wasmhook_plugin, so
test_plugin.py runs it under plain CPython. app.py wires it into the
component.
"""

from typing import Any, Optional
from urllib.parse import quote

from wasmhook_plugin import Event, Fire, Host, PluginError, Request, Skip

#: The only event this plugin acts on.
EVENT_NAME = "email.unsubscribed"

#: Default of config `api_base`.
HUBSPOT_API = "https://api.hubapi.com"

#: Sent when the event carries no usable `reason`.
DEFAULT_REASON = "user request"

#: The secret holding the HubSpot private-app access token.
TOKEN_SECRET = "HUBSPOT_TOKEN"

#: Longest reason written to the contact property (a single-line text
#: property holds far more; the cap keeps the request small).
MAX_REASON_CHARS = 500


def transform(event: Event, host: Host) -> Any:
    """Skip, or fire the unsubscribe-all request (plus, with config
    `reason_property`, a PATCH recording the reason on the contact)."""
    if event.name != EVENT_NAME:
        return Skip('event "%s" is not handled (only %s)' % (event.name, EVENT_NAME))

    email = event.properties.get("email")
    if email is None:
        return Skip("properties.email is missing")
    if not isinstance(email, str):
        return Skip("properties.email is not a string")
    email = email.strip()
    if not email:
        return Skip("properties.email is empty")
    if not is_valid_email(email):
        return Skip('properties.email "%s" is not a valid email address' % shorten(email))

    reason = text_property(event.properties, "reason") or DEFAULT_REASON
    base = api_base(host)
    reason_property = property_name(host)
    encoded = quote(email, safe="")

    # POST /communication-preferences/v4/statuses/{email}/unsubscribe-all?channel=EMAIL
    # takes no body: the unsubscribe itself cannot carry a reason.
    requests = [
        Request.post("%s/communication-preferences/v4/statuses/%s/unsubscribe-all?channel=EMAIL" % (base, encoded))
        .bearer(TOKEN_SECRET)
    ]
    if reason_property:
        requests.append(
            Request.patch("%s/crm/v3/objects/contacts/%s?idProperty=email" % (base, encoded))
            .bearer(TOKEN_SECRET)
            .json({"properties": {reason_property: shorten(reason, MAX_REASON_CHARS)}})
        )
    note = "; recording it in %s" % reason_property if reason_property else ""
    host.info("unsubscribing %s from all HubSpot email (reason: %s%s)" % (mask_email(email), shorten(reason), note))
    return Fire(requests)


def property_name(host: Host) -> Optional[str]:
    """Config `reason_property`: the custom contact property that receives
    the reason, or None (unset or blank: the reason is not recorded).

    Raises PluginError when it is not shaped like a HubSpot internal
    property name (ASCII letters, digits and underscores): a configuration
    mistake, so every event fails loudly instead of skipping.
    """
    name = host.config_or("reason_property", "")
    if not name:
        return None
    if len(name) > 100 or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise PluginError(
            'config reason_property must be a HubSpot internal property name '
            '(letters, digits and _), not "%s"' % shorten(name)
        )
    return name


def api_base(host: Host) -> str:
    """Config `api_base` without trailing slashes, or the HubSpot API.

    Raises PluginError when it is set but not an absolute http(s) URL: a
    configuration mistake, so every event fails loudly instead of skipping.
    """
    base = host.config_or("api_base", HUBSPOT_API).rstrip("/")
    scheme, sep, rest = base.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in base):
        raise PluginError('config api_base must be an absolute http(s) URL, not "%s"' % shorten(base))
    return base


def text_property(properties: dict, key: str) -> Optional[str]:
    """A non-blank string property, stripped; None otherwise."""
    value = properties.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def is_valid_email(email: str) -> bool:
    """A pragmatic address check: one `@`, a plausible local part and a
    domain of at least two dot-separated labels; no spaces or controls.

    Quoted local parts and IP-literal domains (rare in marketing lists) are
    refused.
    """
    if len(email) > 254 or email.count("@") != 1:
        return False
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in email):
        return False
    local, _, domain = email.partition("@")
    if not local or len(local) > 64 or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    if any(c in '"(),:;<>[\\]' for c in local):
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    return True


def mask_email(email: str) -> str:
    """`j***@example.com`: enough to recognise a contact in the log."""
    local, _, domain = email.partition("@")
    return "%s***@%s" % (local[:1], domain)


def shorten(text: str, limit: int = 80) -> str:
    """`text`, cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
