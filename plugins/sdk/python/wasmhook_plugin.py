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
    "secret",
    "counter_value",
    "export",
    "LEVELS",
    "METHODS",
]

#: The log levels of ``wasmhook:plugin/log``, lowest first.
LEVELS = ("trace", "debug", "info", "warn", "error")

#: The HTTP methods a request may use (``enum method``).
METHODS = ("get", "post", "put", "patch", "delete")


def secret(name: str) -> str:
    """The placeholder the host replaces with secret ``name`` at send time.

    Put it in a URL, a header value or a UTF-8 body; the plugin never sees
    the value. ``secret("HUBSPOT_TOKEN") == "{{secret:HUBSPOT_TOKEN}}"``.
    """
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
        """Append a header; returns ``self`` for chaining."""
        self.headers.append((name, value))
        return self

    def bearer(self, secret_name: str) -> "Request":
        """Append ``authorization: Bearer {{secret:<secret_name>}}``."""
        return self.header("authorization", "Bearer " + secret(secret_name))

    def json(self, value: Any) -> "Request":
        """Set a compact JSON body (UTF-8) and ``content-type: application/json``."""
        self.body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self.header("content-type", "application/json")

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
    """An in-memory :class:`Host` for unit tests.

    ``TestHost(config={"api_base": "http://127.0.0.1:9000"})``; after the
    call, ``host.logs`` holds ``(level, message)`` pairs and ``host.kv`` the
    store. ``kv_increment`` behaves like the host's: the counter is stored in
    ``host.kv`` as 8 little-endian bytes (``counter_value`` reads it), a
    value that is not 8 bytes long counts as 0, and the addition wraps at
    64 bits. The host's caps (calls and bytes per invocation, the quota)
    are not enforced.
    """

    __test__ = False  # not a test case, whatever pytest thinks of the name

    def __init__(self, config: Optional[Dict[str, str]] = None, kv: Optional[Dict[str, bytes]] = None):
        self.settings: Dict[str, str] = dict(config or {})
        self.kv: Dict[str, bytes] = dict(kv or {})
        self.logs: List[Tuple[str, str]] = []

    def config(self, key: str) -> Optional[str]:
        return self.settings.get(key)

    def log(self, level: str, message: str) -> None:
        if level not in LEVELS:
            raise ValueError("unknown log level %r" % level)
        self.logs.append((level, message))

    def kv_get(self, key: str) -> Optional[bytes]:
        return self.kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self.kv[key] = bytes(value)

    def kv_delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def kv_increment(self, key: str, delta: int = 1) -> int:
        if not isinstance(delta, int) or isinstance(delta, bool) or not _S64_MIN <= delta <= _S64_MAX:
            raise ValueError("delta must be a signed 64-bit integer, not %r" % (delta,))
        current = _wrap_s64(counter_value(self.kv.get(key)) + delta)
        self.kv[key] = current.to_bytes(8, "little", signed=True)
        return current


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
