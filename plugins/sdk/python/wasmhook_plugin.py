"""Helpers for wasmhook plugins written in Python (built with componentize-py).

A plugin is two modules in its own directory:

``plugin.py``
    The logic: ``def transform(event: Event, host: Host) -> Skip | Fire``.
    It imports only this module and the standard library, so its unit tests
    run under any CPython >= 3.11 with :class:`TestHost` standing in for the
    wasmhook host.

``app.py``
    The component's entry module, always the same two lines::

        from wasmhook_plugin import export
        from plugin import transform

        WitWorld = export(transform)

Import every module ``plugin.py`` needs at its top level: componentize-py
runs ``app.py`` at build time and keeps only what was imported then, so a
module first imported inside a function raises ``ModuleNotFoundError`` in
the component.

:func:`export` is the only function here that touches the bindings
componentize-py generates (``wit_world``), and it imports them only when it
is called, at build time inside componentize-py. Everything else is plain
Python.

Mapping to ``wit/wasmhook.wit``:

* ``record event`` -> :class:`Event`; ``properties`` arrives parsed into a
  ``dict`` (the host guarantees a JSON object).
* ``variant decision`` -> :class:`Skip` or :class:`Fire`.
* ``result::err(message)`` -> raise :class:`PluginError`. Any other exception
  also becomes ``err`` (its type and message), with the traceback logged at
  ``error`` level, instead of trapping the instance.
* ``log``, ``config``, ``kv`` -> the methods of :class:`Host`.

The host's checks on what a plugin returns are here too, so that a unit
test fails where the host would refuse: :func:`validate` (one request),
:func:`validate_decision` (a whole decision, including the ``refused``
rule) and :meth:`TestHost.run`, which calls ``transform`` and judges the
result as the host does, raising :class:`RunError` with the host's error
kind.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

__all__ = [
    "Event",
    "Request",
    "Skip",
    "Fire",
    "Decision",
    "PluginError",
    "Host",
    "TestHost",
    "RunError",
    "InvalidOutput",
    "Refused",
    "Trap",
    "secret",
    "is_secret_name",
    "validate",
    "validate_url",
    "validate_decision",
    "event_holds_placeholder",
    "config_text",
    "counter_value",
    "export",
    "LEVELS",
    "METHODS",
    "FORBIDDEN_HEADERS",
]

#: The log levels of ``wasmhook:plugin/log``, lowest first.
LEVELS = ("trace", "debug", "info", "warn", "error")

#: The HTTP methods a request may use (``enum method``).
METHODS = ("get", "post", "put", "patch", "delete")


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SECRET_NAME_CHARS = _ALNUM | {"_"}


def is_secret_name(name: Any) -> bool:
    """Whether ``name`` is a valid secret name: ``[A-Za-z0-9_]+``."""
    return isinstance(name, str) and name != "" and all(c in _SECRET_NAME_CHARS for c in name)


def secret(name: str) -> str:
    """The placeholder the host replaces with secret ``name`` at send time.

    Put it in a URL, a header value or a UTF-8 body; the plugin never sees
    the value. ``secret("HUBSPOT_TOKEN") == "{{secret:HUBSPOT_TOKEN}}"``.
    Raises ``ValueError`` when ``name`` is not ``[A-Za-z0-9_]+``: the host
    would refuse the placeholder as malformed.
    """
    if not is_secret_name(name):
        raise ValueError("secret name %r is invalid: use letters, digits and _ only" % (name,))
    return "{{secret:%s}}" % name


_S64_MIN = -(1 << 63)
_S64_MAX = (1 << 63) - 1


def counter_value(value: Optional[bytes]) -> int:
    """The counter a stored ``kv`` value holds, as ``kv.increment`` reads it.

    The host keeps a counter as 8 bytes, a little-endian two's-complement
    signed 64-bit integer, in the same key space as ``kv_get``/``kv_set``;
    ``kv_get`` returns those 8 bytes, not decimal text. A value of any other
    length (or None, an absent key) counts as 0.
    ``counter_value((5).to_bytes(8, "little")) == 5``.
    """
    if value is None or len(value) != 8:
        return 0
    return int.from_bytes(bytes(value), "little", signed=True)


def _wrap_s64(n: int) -> int:
    """``n`` wrapped into the signed 64-bit range, as the host's addition wraps."""
    return ((n - _S64_MIN) % (1 << 64)) + _S64_MIN


class PluginError(Exception):
    """Raise to return ``err(message)``: the plugin cannot handle the event.

    The host records a plugin error and sends nothing. Use :class:`Skip` for
    events that are fine but not for this plugin.
    """


@dataclass(frozen=True)
class Event:
    """One event (``record event``), with its properties parsed."""

    #: The sender's idempotency key (stable across retries).
    id: str
    #: The event name, e.g. ``"email.unsubscribed"``.
    name: str
    #: The user the event is about, when the sender gave one.
    user_id: Optional[str] = None
    #: When the event happened, in milliseconds since the Unix epoch.
    timestamp_ms: int = 0
    #: The event's properties (always a JSON object on the wire).
    properties: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        """The event as a JSON-ready dict (the ingest format's field names)."""
        return {
            "id": self.id,
            "name": self.name,
            "user_id": self.user_id,
            "timestamp_ms": self.timestamp_ms,
            "properties": self.properties,
        }


@dataclass
class Request:
    """One outbound HTTP request (``record request``) for the host to send."""

    #: One of :data:`METHODS`.
    method: str
    #: An absolute http(s) URL; may hold ``{{secret:NAME}}`` placeholders.
    url: str
    #: (name, value) pairs, in order.
    headers: List[Tuple[str, str]] = field(default_factory=list)
    #: The body; ``str`` bodies are encoded as UTF-8.
    body: bytes = b""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError("method must be one of %s, not %r" % (", ".join(METHODS), self.method))
        if isinstance(self.body, str):
            self.body = self.body.encode("utf-8")

    @classmethod
    def get(cls, url: str) -> "Request":
        """A GET request to ``url``."""
        return cls("get", url)

    @classmethod
    def post(cls, url: str) -> "Request":
        """A POST request to ``url``."""
        return cls("post", url)

    @classmethod
    def put(cls, url: str) -> "Request":
        """A PUT request to ``url``."""
        return cls("put", url)

    @classmethod
    def patch(cls, url: str) -> "Request":
        """A PATCH request to ``url``."""
        return cls("patch", url)

    @classmethod
    def delete(cls, url: str) -> "Request":
        """A DELETE request to ``url``."""
        return cls("delete", url)

    def header(self, name: str, value: str) -> "Request":
        """Append a header (earlier ones are kept); returns ``self`` for chaining."""
        self.headers.append((name, value))
        return self

    def set_header(self, name: str, value: str) -> "Request":
        """Set header ``name`` to ``value``, removing any earlier header of
        that name (compared case-insensitively); returns ``self``."""
        lower = name.lower()
        self.headers = [(n, v) for n, v in self.headers if str(n).lower() != lower]
        self.headers.append((name, value))
        return self

    def bearer(self, secret_name: str) -> "Request":
        """Set ``authorization: Bearer {{secret:<secret_name>}}``, replacing
        any ``authorization`` header. Raises ``ValueError`` for a name that
        is not ``[A-Za-z0-9_]+``."""
        return self.set_header("authorization", "Bearer " + secret(secret_name))

    def json(self, value: Any) -> "Request":
        """Set a compact JSON body (UTF-8) and ``content-type: application/json``,
        replacing any ``content-type`` header.

        Raises ``ValueError`` for a float that JSON cannot express (``nan``,
        ``inf``): Python would write ``NaN``/``Infinity``, which is not JSON.
        """
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError as e:
            raise ValueError("request body is not JSON: %s (NaN and Infinity have no JSON form)" % e) from None
        self.body = text.encode("utf-8")
        return self.set_header("content-type", "application/json")

    def validate(self) -> None:
        """Check this request as the host does; see :func:`validate`."""
        validate(self)

    def json_body(self) -> Any:
        """The body parsed as JSON (for tests)."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Skip:
    """Do nothing; ``reason`` is recorded in the delivery log."""

    reason: str


@dataclass(frozen=True)
class Fire:
    """Send these requests, each delivered and retried independently."""

    requests: List[Request]

    @classmethod
    def one(cls, request: Request) -> "Fire":
        """Send exactly one request."""
        return cls([request])


#: What ``transform`` returns.
Decision = Union[Skip, Fire]


# ---------------------------------------------------------------------------
# The host's checks on what a plugin returns (host/src/runtime/output.rs and
# the egress policy), with the host's default limits.

#: Most requests one decision may hold (the default ``max_requests``).
MAX_REQUESTS = 16
#: Largest request body, in bytes (the default ``max_body_bytes``).
MAX_BODY_BYTES = 1024 * 1024
#: Longest URL, in bytes.
MAX_URL_BYTES = 8 * 1024
#: Most headers on one request (the default ``max_headers``).
MAX_HEADERS = 64
#: Most bytes of header names and values on one request.
MAX_HEADER_BYTES = 64 * 1024
#: Longest skip reason or error message the host keeps, in bytes.
MAX_REASON_BYTES = 4 * 1024
#: Longest ``kv`` key and value, in bytes.
MAX_KV_KEY_BYTES = 1024
MAX_KV_VALUE_BYTES = 1024 * 1024
#: ``kv`` calls, and bytes written (key plus value of every ``kv_set``, key
#: plus 8 of every ``kv_increment``), per invocation.
MAX_KV_OPS = 10_000
MAX_KV_WRITTEN_BYTES = 8 * 1024 * 1024
#: Log lines kept per invocation, and the longest kept line in bytes.
MAX_LOG_LINES = 100
MAX_LOG_LINE_BYTES = 2048

#: Headers a plugin may not set (compared case-insensitively): hop-by-hop
#: and framing headers, and the signing headers the host adds itself.
FORBIDDEN_HEADERS = (
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "http2-settings",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)

_PLACEHOLDER_OPEN = "{{secret:"
_TCHAR = _ALNUM | frozenset("!#$%&'*+-.^_`|~")
_REG_NAME = _ALNUM | frozenset("-._~!$&'()*+,;=")
_SCHEME_CHARS = _ALNUM | frozenset("+-.")
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")


class InvalidOutput(ValueError):
    """A request or decision the host refuses as ``invalid_output``."""


class Refused(ValueError):
    """A decision the host refuses as ``refused``: the event's own data and
    a request both hold ``{{secret:``."""


class Trap(BaseException):
    """What :class:`TestHost` raises where the host traps the invocation (a
    ``kv`` call past a cap). A ``BaseException``, so that a plugin's
    ``except Exception`` does not catch it: a trap cannot be caught in the
    component either."""


class RunError(Exception):
    """Why :meth:`TestHost.run` produced no decision: ``kind`` is the error
    kind the host records (``plugin``, ``invalid_output``, ``refused`` or
    ``trap``), ``message`` its message (cut to 4 KiB as the host keeps it)."""

    def __init__(self, kind: str, message: str):
        super().__init__("%s: %s" % (kind, message))
        self.kind = kind
        self.message = message


def truncate(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 on a character boundary, with
    the host's mark ``… (N bytes truncated)``."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    end = max_bytes
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return "%s\u2026 (%d bytes truncated)" % (data[:end].decode("utf-8", "surrogatepass"), len(data) - end)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _check_placeholders(text: str) -> Optional[str]:
    """Every ``{{secret:`` must open ``{{secret:NAME}}``; the error or None."""
    at = text.find(_PLACEHOLDER_OPEN)
    while at != -1:
        start = at + len(_PLACEHOLDER_OPEN)
        end = start
        while end < len(text) and text[end] in _SECRET_NAME_CHARS:
            end += 1
        if end == start or not text.startswith("}}", end):
            return "malformed secret placeholder: expected {{secret:NAME}} with NAME of letters, digits and _"
        at = text.find(_PLACEHOLDER_OPEN, end + 2)
    return None


def _is_control_or_space(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F or c.isspace()


def _ends_in_number(label: str) -> bool:
    if label and all(c in _DIGITS for c in label):
        return True
    return label.startswith("0x") and all(c in _HEX for c in label[2:])


def _is_ipv4(host: str) -> bool:
    """The URL standard's IPv4 parser: up to 4 parts, decimal, 0x hex or 0
    octal; all but the last at most 255, the last filling the rest."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts or len(parts) > 4:
        return False
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            digits, base, allowed = part[2:], 16, _HEX
        elif len(part) > 1 and part.startswith("0"):
            digits, base, allowed = part[1:], 8, frozenset("01234567")
        else:
            digits, base, allowed = part, 10, _DIGITS
        if not all(c in allowed for c in digits) or (digits == "" and base != 16):
            return False
        numbers.append(int(digits, base) if digits else 0)
    return all(n <= 255 for n in numbers[:-1]) and numbers[-1] < 256 ** (5 - len(numbers))


def _is_ipv6(text: str) -> bool:
    """An IPv6 address as the URL standard's parser accepts it (no zone id)."""
    head, compressed, tail = text.partition("::")
    if "::" in tail:
        return False
    pieces = (head.split(":") if head else []) + (tail.split(":") if tail else [])
    groups = 0
    for i, piece in enumerate(pieces):
        if "." in piece:  # an embedded IPv4 address, the last piece
            parts = piece.split(".")
            if i != len(pieces) - 1 or len(parts) != 4:
                return False
            for part in parts:
                if not part or len(part) > 3 or not all(c in _DIGITS for c in part):
                    return False
                if (len(part) > 1 and part[0] == "0") or int(part) > 255:
                    return False
            groups += 2
        elif not 1 <= len(piece) <= 4 or not all(c in _HEX for c in piece):
            return False
        else:
            groups += 1
    return groups <= 7 if compressed else groups == 8


def _percent_decode(text: str) -> Optional[str]:
    out = bytearray()
    data = text.encode("utf-8", "surrogatepass")
    i = 0
    while i < len(data):
        if data[i] == 0x25 and i + 2 < len(data) and chr(data[i + 1]) in _HEX and chr(data[i + 2]) in _HEX:
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_domain(raw: str) -> Optional[str]:
    host = _percent_decode(raw)
    if host is None:
        return "the host is not valid UTF-8 once percent-decoded"
    host = "".join(c.lower() if c < "\x80" else c for c in host)
    for c in host:
        if c < "\x80" and c not in _REG_NAME:
            return "the host has a character an HTTP client refuses (%r)" % c
        if _is_control_or_space(c):
            return "the host has whitespace or control characters"
    labels = host.split(".")
    last = labels[-2] if len(labels) > 1 and labels[-1] == "" else labels[-1]
    if _ends_in_number(last) and not _is_ipv4(host):
        return "the host is not a valid IPv4 address"
    return None


def validate_url(url: str) -> None:
    """Check a request URL as the host and its egress policy do; raises
    :class:`InvalidOutput`.

    At most 8 KiB; no whitespace, control character or backslash;
    well-formed ``{{secret:NAME}}`` placeholders, none in the scheme, host
    or port; an absolute ``http`` or ``https`` URL with a host; no
    ``user:pass@``; no IPv6 zone id; a port of at most 65535; a host name
    of characters an HTTP client accepts; a numeric host that is a valid
    IPv4 address (as the URL standard reads ``0x7f.1``). Non-ASCII host
    names are accepted as the host's IDNA mapping would accept them,
    without applying it.
    """
    if not isinstance(url, str):
        raise InvalidOutput("URL is a %s, not a str" % type(url).__name__)
    shown = truncate(url, 256)
    if _utf8_len(url) > MAX_URL_BYTES:
        raise InvalidOutput("URL of %d bytes exceeds the %d-byte limit" % (_utf8_len(url), MAX_URL_BYTES))
    if any(_is_control_or_space(c) for c in url):
        raise InvalidOutput("URL contains whitespace or control characters")
    if "\\" in url:
        raise InvalidOutput("URL contains a backslash (refused by the egress policy)")
    problem = _check_placeholders(url)
    if problem:
        raise InvalidOutput("URL: " + problem)
    scheme, colon, rest = url.partition(":")
    if not colon or not scheme or not ("a" <= scheme[0].lower() <= "z" and scheme[0] < "\x80") or not all(c in _SCHEME_CHARS for c in scheme):
        raise InvalidOutput("URL %r is not an absolute URL" % shown)
    if scheme.lower() not in ("http", "https"):
        raise InvalidOutput("URL scheme %r is not allowed; use http or https" % scheme.lower())
    rest = rest.lstrip("/")
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i != -1] or [len(rest)])
    authority = rest[:end]
    if "{{" in authority:
        raise InvalidOutput("secret placeholders are not allowed in the URL's scheme, host or port")
    if "@" in authority:
        raise InvalidOutput("URL holds credentials (user:pass@), refused by the egress policy; send them in a header")
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise InvalidOutput("URL has an unclosed IPv6 address")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise InvalidOutput("URL has text after its IPv6 address")
        port = after[1:] if after else None
    else:
        host, sep, port = authority.partition(":")
        port = port if sep else None
    if port:
        if not all(c in _DIGITS for c in port) or int(port) > 65535:
            raise InvalidOutput("URL %r has an invalid port" % shown)
    if not host:
        raise InvalidOutput("URL %r has no host" % shown)
    if host.startswith("["):
        inner = host[1:-1]
        if "%" in inner:
            raise InvalidOutput("URL has an IPv6 zone id, refused by the egress policy")
        if not _is_ipv6(inner):
            raise InvalidOutput("URL %r has an invalid IPv6 address" % shown)
        return
    problem = _check_domain(host)
    if problem:
        raise InvalidOutput("URL %r: %s" % (shown, problem))


def validate(request: "Request") -> None:
    """Check one request as the host does before sending it; raises
    :class:`InvalidOutput` saying what the host would refuse.

    The URL (see :func:`validate_url`); at most 64 headers of 64 KiB in all
    (names and values); header names that are HTTP tokens and not in
    :data:`FORBIDDEN_HEADERS` (Host, Content-Length, Transfer-Encoding,
    Connection, Expect, ``webhook-*``, ...); values without control
    characters (TAB allowed); a body of at most 1 MiB; well-formed
    placeholders in header values and a UTF-8 body. Not checked, because
    they depend on the operator's configuration: ``allowed_hosts``,
    ``allowed_methods``, the private-network block, and the secrets.
    """
    if request.method not in METHODS:
        raise InvalidOutput("method must be one of %s, not %r" % (", ".join(METHODS), request.method))
    validate_url(request.url)
    headers = [(str(n), str(v)) for n, v in request.headers]
    if len(headers) > MAX_HEADERS:
        raise InvalidOutput("%d headers; at most %d are allowed" % (len(headers), MAX_HEADERS))
    size = sum(_utf8_len(n) + _utf8_len(v) for n, v in headers)
    if size > MAX_HEADER_BYTES:
        raise InvalidOutput(
            "headers of %d bytes exceed the %d-byte limit (names and values)" % (size, MAX_HEADER_BYTES)
        )
    for name, value in headers:
        if not name or _utf8_len(name) >= 1 << 16 or not all(c in _TCHAR for c in name):
            raise InvalidOutput("invalid header name %r" % truncate(name, 64))
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidOutput(
                "header %r is set by the host (hop-by-hop, framing or signing header); remove it from the request"
                % name.lower()
            )
        if any((c < "\x20" and c != "\t") or c == "\x7f" for c in value):
            raise InvalidOutput(
                "invalid value for header %r (control characters such as CR/LF are not allowed)" % truncate(name, 64)
            )
        problem = _check_placeholders(value)
        if problem:
            raise InvalidOutput("header %r: %s" % (truncate(name, 64), problem))
    body = bytes(request.body)
    if len(body) > MAX_BODY_BYTES:
        raise InvalidOutput("body of %d bytes exceeds the %d-byte limit (max_body_bytes)" % (len(body), MAX_BODY_BYTES))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    problem = _check_placeholders(text)
    if problem:
        raise InvalidOutput("body: " + problem)


def event_holds_placeholder(event: "Event") -> bool:
    """Whether the event's own data (id, name, user id, any key or value of
    its properties) holds ``{{secret:``, as the host decides it."""
    try:
        properties = json.dumps(event.properties, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        properties = str(event.properties)
    texts = [event.id, event.name, properties] + ([event.user_id] if event.user_id is not None else [])
    return any(_PLACEHOLDER_OPEN in str(t) for t in texts)


def _request_holds_placeholder(request: "Request") -> bool:
    if _PLACEHOLDER_OPEN in str(request.url) or any(_PLACEHOLDER_OPEN in str(v) for _, v in request.headers):
        return True
    try:
        return _PLACEHOLDER_OPEN in bytes(request.body).decode("utf-8")
    except UnicodeDecodeError:
        return False


def validate_decision(event: "Event", decision: Any) -> None:
    """Check ``decision`` as the host checks what ``transform`` returned for
    ``event``: at most 16 requests (:class:`InvalidOutput`), then the
    ``refused`` rule (:class:`Refused`: the event's own data holds
    ``{{secret:`` and so does a request, in its URL, a header value or a
    UTF-8 body), then :func:`validate` on each request. A skip passes."""
    if not isinstance(decision, Fire):
        return
    requests = list(decision.requests)
    if len(requests) > MAX_REQUESTS:
        raise InvalidOutput(
            "the plugin returned %d requests; at most %d are allowed per event (max_requests)"
            % (len(requests), MAX_REQUESTS)
        )
    if event_holds_placeholder(event):
        for i, request in enumerate(requests):
            if _request_holds_placeholder(request):
                raise Refused(
                    "request %d holds a secret placeholder, and the event's own data holds the text "
                    "\"{{secret:\": the host fills no placeholder it cannot tell from event text" % i
                )
    for i, request in enumerate(requests):
        try:
            validate(request)
        except InvalidOutput as e:
            raise InvalidOutput(truncate("request %d: %s" % (i, e), MAX_REASON_BYTES)) from None


def _float_text(value: float) -> str:
    """The shortest round-tripping digits of ``value`` written out without
    an exponent or a trailing ``.0``, as Rust's ``f64`` ``Display`` does."""
    text = repr(value)
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-")
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len((whole + fraction).lstrip("0")))
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0"
    if point <= 0:
        return sign + "0." + "0" * -point + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def config_text(value: Any) -> str:
    """A config value as the host holds it: always text. Strings stay as
    they are; booleans become ``"true"``/``"false"`` and numbers their
    shortest text (``3``, ``2.5``, ``1e20`` as ``"100000000000000000000"``,
    ``2.0`` as ``"2"``), as the host reads them from TOML. Anything else
    raises ``TypeError`` (the host refuses it at load)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return _float_text(value)
    raise TypeError("config values are strings, numbers or booleans, not %s" % type(value).__name__)


class Host:
    """The host's imports: ``log``, ``config`` and ``kv``.

    Plugins receive an instance as ``transform``'s second argument. Inside a
    component it calls the real imports; in unit tests use :class:`TestHost`.
    """

    def config(self, key: str) -> Optional[str]:
        """Setting ``key`` from the operator's ``[plugins.config]``, or None."""
        raise NotImplementedError

    def config_or(self, key: str, default: str) -> str:
        """Setting ``key`` with surrounding whitespace removed, or ``default``
        when it is unset or blank."""
        value = self.config(key)
        if value is None or not value.strip():
            return default
        return value.strip()

    def log(self, level: str, message: str) -> None:
        """Write one message at ``level`` (one of :data:`LEVELS`)."""
        raise NotImplementedError

    def debug(self, message: str) -> None:
        """``log("debug", message)``."""
        self.log("debug", message)

    def info(self, message: str) -> None:
        """``log("info", message)``."""
        self.log("info", message)

    def warn(self, message: str) -> None:
        """``log("warn", message)``."""
        self.log("warn", message)

    def error(self, message: str) -> None:
        """``log("error", message)``."""
        self.log("error", message)

    def kv_get(self, key: str) -> Optional[bytes]:
        """The value stored under ``key``, or None."""
        raise NotImplementedError

    def kv_set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        raise NotImplementedError

    def kv_delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""
        raise NotImplementedError

    def kv_increment(self, key: str, delta: int = 1) -> int:
        """Atomically add ``delta`` (a signed 64-bit integer) to the counter
        under ``key`` (absent counts as 0); the new value.

        The counter is stored as 8 little-endian bytes (see
        :func:`counter_value`); a value that is not 8 bytes long counts as 0
        and is overwritten, and the addition wraps on overflow. Every call is
        a write, which counts against the host's per-invocation caps.
        """
        raise NotImplementedError

    def kv_get_counter(self, key: str) -> int:
        """The counter under ``key`` (0 when absent or not a counter), read
        with ``kv_get``: nothing is written."""
        return counter_value(self.kv_get(key))


class TestHost(Host):
    """An in-memory :class:`Host` for unit tests, behaving like the host.

    ``TestHost(config={"api_base": "http://127.0.0.1:9000"})``; after the
    call, ``host.logs`` holds ``(level, message)`` pairs and ``host.kv`` the
    store.

    * Config values are text, as on the host: ``True`` becomes ``"true"``,
      ``3`` ``"3"``, ``2.5`` ``"2.5"`` (see :func:`config_text`); anything
      else raises ``TypeError``.
    * ``kv_increment`` stores the counter in ``host.kv`` as 8 little-endian
      bytes (``counter_value`` reads it), a value that is not 8 bytes long
      counts as 0, and the addition wraps at 64 bits.
    * ``kv`` calls past the host's caps raise :class:`Trap` (the host traps
      the invocation): keys over 1 KiB, values over 1 MiB, and per
      invocation more than 10 000 calls or 8 MiB written (key plus value of
      every ``kv_set``, key plus 8 of every ``kv_increment``). The
      namespace quota (``kv_max_mb``) is not enforced.
    * Logs are capped like the host's: 100 lines per invocation (more are
      dropped; :meth:`run` adds the host's note saying how many), each cut
      to 2 KiB with the mark ``… (N bytes truncated)``.

    An invocation starts with the ``TestHost`` and with every :meth:`run`
    (or :meth:`begin_invocation`). Call the plugin through :meth:`run` to
    have its result judged as the host judges it; calling ``transform``
    directly checks nothing.
    """

    __test__ = False  # not a test case, whatever pytest thinks of the name

    def __init__(self, config: Optional[Dict[str, Any]] = None, kv: Optional[Dict[str, bytes]] = None):
        self.settings: Dict[str, str] = {}
        for key, value in (config or {}).items():
            self.set_config(key, value)
        self.kv: Dict[str, bytes] = dict(kv or {})
        self.logs: List[Tuple[str, str]] = []
        self.begin_invocation()

    def set_config(self, key: str, value: Any) -> None:
        """Set config ``key`` as ``[plugins.config]`` would (converted to
        text like the host; ``TypeError`` for a list, dict or None)."""
        self.settings[key] = config_text(value)

    def begin_invocation(self) -> None:
        """Start a new invocation: the per-invocation caps (``kv`` calls and
        bytes, log lines) count from here. :meth:`run` calls it."""
        self.kv_ops = 0
        self.kv_written = 0
        self._log_lines = 0
        self.logs_dropped = 0

    def config(self, key: str) -> Optional[str]:
        return self.settings.get(key)

    def log(self, level: str, message: str) -> None:
        if level not in LEVELS:
            raise ValueError("unknown log level %r" % level)
        if self._log_lines >= MAX_LOG_LINES:
            self.logs_dropped += 1
            return
        self._log_lines += 1
        self.logs.append((level, truncate(str(message), MAX_LOG_LINE_BYTES)))

    def _kv_op(self, key: str) -> None:
        self.kv_ops += 1
        if self.kv_ops > MAX_KV_OPS:
            raise Trap("kv: more than %d operations in one invocation" % MAX_KV_OPS)
        if _utf8_len(key) > MAX_KV_KEY_BYTES:
            raise Trap("kv: key of %d bytes exceeds the %d-byte limit" % (_utf8_len(key), MAX_KV_KEY_BYTES))

    def _kv_write(self, key: str, value_len: int) -> None:
        self.kv_written += _utf8_len(key) + value_len
        if self.kv_written > MAX_KV_WRITTEN_BYTES:
            raise Trap(
                "kv: more than %d bytes written in one invocation (keys and values of every set and increment)"
                % MAX_KV_WRITTEN_BYTES
            )

    def kv_get(self, key: str) -> Optional[bytes]:
        self._kv_op(key)
        return self.kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self._kv_op(key)
        value = bytes(value)
        if len(value) > MAX_KV_VALUE_BYTES:
            raise Trap("kv: value of %d bytes exceeds the %d-byte limit" % (len(value), MAX_KV_VALUE_BYTES))
        self._kv_write(key, len(value))
        self.kv[key] = value

    def kv_delete(self, key: str) -> None:
        self._kv_op(key)
        self.kv.pop(key, None)

    def kv_increment(self, key: str, delta: int = 1) -> int:
        if not isinstance(delta, int) or isinstance(delta, bool) or not _S64_MIN <= delta <= _S64_MAX:
            raise ValueError("delta must be a signed 64-bit integer, not %r" % (delta,))
        self._kv_op(key)
        self._kv_write(key, 8)
        current = _wrap_s64(counter_value(self.kv.get(key)) + delta)
        self.kv[key] = current.to_bytes(8, "little", signed=True)
        return current

    def kv_get_counter(self, key: str) -> int:
        return counter_value(self.kv_get(key))

    def run(self, transform: Callable[[Event, Host], Decision], event: Event) -> Decision:
        """Call ``transform(event, self)`` as the host would and return its
        decision, or raise :class:`RunError` with the kind the host records:

        * ``plugin``: it raised :class:`PluginError` (or any other
          exception, whose traceback is logged at ``error``, as in the
          component), or returned something that is not a :class:`Skip`
          or :class:`Fire` of :class:`Request`;
        * ``trap``: a ``kv`` call went past a cap (:class:`Trap`);
        * ``invalid_output``: more than 16 requests, or a request
          :func:`validate` refuses;
        * ``refused``: the event's own data holds ``{{secret:`` and so does
          a request (see :func:`validate_decision`).

        ``kv`` writes made before the error are kept, as on the host. A
        skip reason is cut to 4 KiB.
        """
        self.begin_invocation()
        try:
            try:
                decision = transform(event, self)
            except PluginError as e:
                raise RunError("plugin", truncate(str(e), MAX_REASON_BYTES)) from e
            except Trap as e:
                raise RunError("trap", truncate(str(e), MAX_REASON_BYTES)) from e
            except Exception as e:
                self.error("".join(traceback.format_exception(type(e), e, e.__traceback__))[-1500:])
                raise RunError("plugin", truncate(describe_exception(e), MAX_REASON_BYTES)) from e
        finally:
            if self.logs_dropped:
                self.logs.append(
                    ("warn", "%d log lines dropped (cap %d per invocation)" % (self.logs_dropped, MAX_LOG_LINES))
                )
                self.logs_dropped = 0
        if isinstance(decision, Skip):
            return Skip(truncate(str(decision.reason), MAX_REASON_BYTES))
        if not isinstance(decision, Fire):
            raise RunError("plugin", "transform returned %r, not Skip or Fire" % (decision,))
        for request in decision.requests:
            if not isinstance(request, Request):
                raise RunError("plugin", "Fire holds %r, not a Request" % (request,))
        try:
            validate_decision(event, decision)
        except Refused as e:
            raise RunError("refused", str(e)) from None
        except InvalidOutput as e:
            raise RunError("invalid_output", str(e)) from None
        return decision


def parse_event(id: str, name: str, user_id: Optional[str], timestamp_ms: int, properties: str) -> Event:
    """Build an :class:`Event` from the WIT record's fields.

    Raises :class:`PluginError` when ``properties`` is not a JSON object
    (the host guarantees it is).
    """
    try:
        props = json.loads(properties) if properties else {}
    except ValueError as e:
        raise PluginError("event properties are not valid JSON: %s" % e) from None
    if not isinstance(props, dict):
        raise PluginError("event properties are not a JSON object")
    return Event(id=id, name=name, user_id=user_id, timestamp_ms=timestamp_ms, properties=props)


def describe_exception(e: BaseException) -> str:
    """``"TypeError: message"`` for an unexpected exception."""
    text = str(e)
    return "%s: %s" % (type(e).__name__, text) if text else type(e).__name__


def export(transform: Callable[[Event, Host], Decision]) -> type:
    """The ``WitWorld`` class componentize-py instantiates, wrapping ``transform``.

    Call it in ``app.py``: ``WitWorld = export(transform)``. Needs the
    bindings of the world ``transformer`` (``wit_world``), which exist only
    while componentize-py builds the component.
    """
    import wit_world  # generated by componentize-py at build time
    from componentize_py_types import Err
    from wit_world.imports import config as wit_config
    from wit_world.imports import kv as wit_kv
    from wit_world.imports import log as wit_log
    from wit_world.imports import types as wit_types

    levels = {
        "trace": wit_log.Level.TRACE,
        "debug": wit_log.Level.DEBUG,
        "info": wit_log.Level.INFO,
        "warn": wit_log.Level.WARN,
        "error": wit_log.Level.ERROR,
    }
    methods = {
        "get": wit_types.Method.GET,
        "post": wit_types.Method.POST,
        "put": wit_types.Method.PUT,
        "patch": wit_types.Method.PATCH,
        "delete": wit_types.Method.DELETE,
    }

    class ComponentHost(Host):
        """:class:`Host` over the component's real imports."""

        def config(self, key: str) -> Optional[str]:
            return wit_config.get(key)

        def log(self, level: str, message: str) -> None:
            wit_log.log(levels[level], message)

        def kv_get(self, key: str) -> Optional[bytes]:
            return wit_kv.get(key)

        def kv_set(self, key: str, value: bytes) -> None:
            wit_kv.set(key, bytes(value))

        def kv_delete(self, key: str) -> None:
            wit_kv.delete(key)

        def kv_increment(self, key: str, delta: int = 1) -> int:
            return wit_kv.increment(key, delta)

    host = ComponentHost()

    def to_wit(decision: Any) -> Any:
        if isinstance(decision, Skip):
            return wit_types.Decision_Skip(str(decision.reason))
        if isinstance(decision, Fire):
            return wit_types.Decision_Fire(
                [
                    wit_types.Request(
                        method=methods[r.method],
                        url=r.url,
                        headers=[(str(k), str(v)) for k, v in r.headers],
                        body=bytes(r.body),
                    )
                    for r in decision.requests
                ]
            )
        raise PluginError("transform returned %r, not Skip or Fire" % (decision,))

    class WitWorld(wit_world.WitWorld):
        def transform(self, event: Any) -> Any:
            try:
                ev = parse_event(event.id, event.name, event.user_id, event.timestamp_ms, event.properties)
                return to_wit(transform(ev, host))
            except PluginError as e:
                raise Err(str(e))
            except Exception as e:  # anything else: err, not a trap
                host.error("".join(traceback.format_exception(type(e), e, e.__traceback__))[-1500:])
                raise Err(describe_exception(e))

    WitWorld.__name__ = WitWorld.__qualname__ = "WitWorld"
    return WitWorld
