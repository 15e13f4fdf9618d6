"""Tests of wasmhook_plugin under plain CPython.

The `export` tests use the binding stubs that `componentize-py bindings`
writes to target/py-bindings (scripts/plugins/python.sh generates them and
puts them on PYTHONPATH); they are skipped when the stubs are absent.
"""

import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BINDINGS = HERE.parents[2] / "target" / "py-bindings"
if BINDINGS.is_dir():
    sys.path.append(str(BINDINGS))

from wasmhook_plugin import (  # noqa: E402
    FORBIDDEN_HEADERS,
    Event,
    Fire,
    InvalidOutput,
    PluginError,
    Refused,
    Request,
    RunError,
    Skip,
    TestHost,
    Trap,
    config_text,
    counter_value,
    describe_exception,
    event_holds_placeholder,
    export,
    is_secret_name,
    parse_event,
    secret,
    truncate,
    validate,
    validate_decision,
    validate_url,
)

try:
    import componentize_py_types
    import wit_world
    from wit_world.imports import config as wit_config
    from wit_world.imports import kv as wit_kv
    from wit_world.imports import log as wit_log
    from wit_world.imports import types as wit_types
except ImportError:  # no binding stubs: the export tests are skipped
    wit_world = None


class RequestTest(unittest.TestCase):
    def test_secret_placeholder(self):
        self.assertEqual(secret("HUBSPOT_TOKEN"), "{{secret:HUBSPOT_TOKEN}}")

    def test_builders_set_the_method(self):
        for build, method in (
            (Request.get, "get"),
            (Request.post, "post"),
            (Request.put, "put"),
            (Request.patch, "patch"),
            (Request.delete, "delete"),
        ):
            with self.subTest(method=method):
                request = build("https://example.com/")
                self.assertEqual((request.method, request.url, request.headers, request.body), (method, "https://example.com/", [], b""))

    def test_unknown_method_is_refused(self):
        with self.assertRaises(ValueError):
            Request("head", "https://example.com/")

    def test_json_sets_a_compact_utf8_body_and_content_type(self):
        request = Request.post("https://example.com/").bearer("TOKEN").json({"a": [1, 2], "b": "\u00e9"})
        self.assertEqual(request.body, '{"a":[1,2],"b":"\u00e9"}'.encode("utf-8"))
        self.assertEqual(
            request.headers,
            [("authorization", "Bearer {{secret:TOKEN}}"), ("content-type", "application/json")],
        )
        self.assertEqual(request.json_body(), {"a": [1, 2], "b": "\u00e9"})

    def test_json_and_bearer_replace_earlier_headers_of_their_name(self):
        request = (
            Request.post("https://example.com/")
            .header("Content-Type", "text/plain")
            .header("Authorization", "Basic x")
            .header("x-a", "1")
            .json({"a": 1})
            .bearer("TOKEN")
            .bearer("OTHER")
        )
        self.assertEqual(
            request.headers,
            [("x-a", "1"), ("content-type", "application/json"), ("authorization", "Bearer {{secret:OTHER}}")],
        )
        self.assertEqual(request.set_header("X-A", "2").headers[-1], ("X-A", "2"))
        self.assertEqual([n for n, _ in request.headers].count("x-a"), 0)

    def test_json_refuses_nan_and_infinity(self):
        for value in (float("nan"), float("inf"), {"a": [float("-inf")]}):
            with self.subTest(value=value):
                request = Request.post("https://example.com/")
                with self.assertRaises(ValueError) as raised:
                    request.json(value)
                self.assertIn("not JSON", str(raised.exception))
                self.assertEqual((request.body, request.headers), (b"", []))

    def test_secret_refuses_names_the_host_would_not_fill(self):
        for bad in ("", "API-TOKEN", "A B", "X}}", "\u212a", "\u00e9", "TOKEN\n", None, 5):
            with self.subTest(name=bad):
                self.assertFalse(is_secret_name(bad))
                with self.assertRaises(ValueError):
                    secret(bad)
        with self.assertRaises(ValueError):
            Request.get("https://example.com/").bearer("A-B")
        for good in ("A", "a_1", "_", "TOKEN_2"):
            self.assertEqual(secret(good), "{{secret:%s}}" % good)

    def test_str_body_is_utf8(self):
        self.assertEqual(Request("put", "https://example.com/", body="\u00e9").body, b"\xc3\xa9")


class TestHostTest(unittest.TestCase):
    def test_config_and_config_or(self):
        host = TestHost(config={"a": " x ", "blank": "  "})
        self.assertEqual(host.config("a"), " x ")
        self.assertIsNone(host.config("missing"))
        self.assertEqual(host.config_or("a", "d"), "x")
        self.assertEqual(host.config_or("blank", "d"), "d")
        self.assertEqual(host.config_or("missing", "d"), "d")

    def test_logs_are_recorded(self):
        host = TestHost()
        host.info("one")
        host.log("warn", "two")
        self.assertEqual(host.logs, [("info", "one"), ("warn", "two")])
        with self.assertRaises(ValueError):
            host.log("loud", "x")

    def test_kv(self):
        host = TestHost(kv={"seen": b"1"})
        self.assertEqual(host.kv_get("seen"), b"1")
        self.assertIsNone(host.kv_get("nope"))
        host.kv_set("k", b"v")
        host.kv_delete("seen")
        host.kv_delete("never-there")
        self.assertEqual(host.kv, {"k": b"v"})
        self.assertEqual(host.kv_increment("n"), 1)
        self.assertEqual(host.kv_increment("n", 5), 6)
        self.assertEqual(host.kv_increment("n", -10), -4)

    def test_a_counter_is_stored_as_8_little_endian_bytes_like_on_the_host(self):
        host = TestHost()
        self.assertEqual(host.kv_increment("n"), 1)
        self.assertEqual(host.kv_get("n"), b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.assertEqual(host.kv_increment("n", 0x0102), 0x0103)
        self.assertEqual(host.kv_get("n"), b"\x03\x01\x00\x00\x00\x00\x00\x00")
        self.assertEqual(host.kv_get_counter("n"), 0x0103)
        self.assertEqual(host.kv_increment("n", -0x0104), -1)
        self.assertEqual(host.kv_get("n"), b"\xff" * 8)
        self.assertEqual(host.kv_get_counter("n"), -1)
        self.assertEqual(host.kv_get_counter("absent"), 0)
        self.assertNotIn("absent", host.kv)

    def test_increment_treats_a_value_that_is_not_8_bytes_as_0(self):
        for value in (b"41", b"", b"\x07" * 9):
            with self.subTest(value=value):
                host = TestHost(kv={"n": value})
                self.assertEqual(host.kv_get_counter("n"), 0)
                self.assertEqual(host.kv_increment("n", 2), 2)
        host = TestHost(kv={"n": (41).to_bytes(8, "little")})
        self.assertEqual(host.kv_increment("n"), 42)

    def test_increment_wraps_on_overflow(self):
        host = TestHost(kv={"n": ((1 << 63) - 1).to_bytes(8, "little")})
        self.assertEqual(host.kv_increment("n"), -(1 << 63))
        self.assertEqual(host.kv_get("n"), b"\x00" * 7 + b"\x80")
        self.assertEqual(host.kv_increment("n", -1), (1 << 63) - 1)

    def test_increment_refuses_a_delta_outside_s64(self):
        host = TestHost()
        for delta in (1 << 63, -(1 << 63) - 1, 1.5, True):
            with self.subTest(delta=delta):
                with self.assertRaises(ValueError):
                    host.kv_increment("n", delta)
        self.assertEqual(host.kv, {})

    def test_counter_value(self):
        self.assertEqual(counter_value((5).to_bytes(8, "little")), 5)
        self.assertEqual(counter_value((-5).to_bytes(8, "little", signed=True)), -5)
        self.assertEqual(counter_value(b"\xff" * 8), -1)
        self.assertEqual(counter_value(b"12345678"), int.from_bytes(b"12345678", "little"))
        self.assertEqual(counter_value(bytearray(b"\x02" + b"\x00" * 7)), 2)
        for value in (None, b"", b"5", b"123456789"):
            with self.subTest(value=value):
                self.assertEqual(counter_value(value), 0)


class ValidateTest(unittest.TestCase):
    def assertInvalid(self, request, text):
        with self.assertRaises(InvalidOutput) as raised:
            validate(request)
        self.assertIn(text, str(raised.exception))

    def test_urls_the_host_accepts(self):
        for url in (
            "https://api.example.com/v1/x",
            "http://example.com",
            "HTTPS://Example.COM:8443/a?b=c#d",
            "https://hooks.slack.com/services/{{secret:SLACK_PATH}}",
            "https://graph.facebook.com/me?access_token={{secret:TOKEN}}",
            "http://127.0.0.1:9000/hook",
            "http://[::1]:8080/x",
            "http://[::ffff:1.2.3.4]/",
            "http://[1::]/",
            "https://b\u00fccher.example/",
            "http://0x7f.1/",
            "https:///x",
        ):
            with self.subTest(url=url):
                validate_url(url)

    def test_urls_the_host_refuses(self):
        for url, why in (
            ("not a url", "whitespace"),
            ("/relative/path", "absolute"),
            ("ftp://example.com/x", "scheme"),
            ("https://exa\nmple.com", "control"),
            ("https://example.com/\u00a0", "whitespace"),
            ("https://example.com\\@evil.com/", "backslash"),
            ("https://{{secret:HOST}}/x", "host"),
            ("https://example.com/{{secret:}}", "malformed"),
            ("https://example.com/{{secret:A-B}}", "malformed"),
            ("https://user:pass@example.com/", "credentials"),
            ("https://example.com:99999/", "port"),
            ("https://[fe80::1%25eth0]/", "zone"),
            ("https://[nope]/", "IPv6"),
            ("https://[1:2:3:4:5:6:7:8:9]/", "IPv6"),
            ("https://[::01.2.3.4]/", "IPv6"),
            ("https://", "no host"),
            ('http://a"b.example/', "refuses"),
            ("http://999.1.1.1/", "IPv4"),
            ("https://example.com/" + "a" * 9000, "limit"),
        ):
            with self.subTest(url=url):
                with self.assertRaises(InvalidOutput) as raised:
                    validate_url(url)
                self.assertIn(why, str(raised.exception))

    def test_headers(self):
        base = lambda: Request.post("https://example.com/")  # noqa: E731
        validate(base().header("X-Ok", "fine\there"))
        self.assertInvalid(base().header("x-bad", "a\r\nInjected: 1"), "CR/LF")
        for name in ("bad name", "", "a:b", "\u00e9"):
            with self.subTest(name=name):
                self.assertInvalid(base().header(name, "v"), "header name")
        for name in FORBIDDEN_HEADERS + ("Host", "Content-Length", "TRANSFER-ENCODING", "Connection", "Expect"):
            with self.subTest(name=name):
                self.assertInvalid(base().header(name, "x"), "set by the host")
        many = base()
        for i in range(65):
            many.header("x-%d" % i, "v")
        self.assertInvalid(many, "at most 64")
        self.assertInvalid(base().header("x-big", "v" * (64 * 1024)), "65536-byte")
        self.assertInvalid(base().header("authorization", "Bearer {{secret:A B}}"), "malformed")

    def test_body(self):
        base = lambda: Request.post("https://example.com/")  # noqa: E731
        validate(base().json({"k": secret("KEY")}))
        validate(Request("post", "https://example.com/", body=b"x" * (1024 * 1024)))
        self.assertInvalid(Request("post", "https://example.com/", body=b"x" * (1024 * 1024 + 1)), "max_body_bytes")
        self.assertInvalid(Request("post", "https://example.com/", body='{"k":"{{secret:KEY"}'), "body: malformed")
        # A body that is not UTF-8 is not searched for placeholders.
        validate(Request("post", "https://example.com/", body=b"\xff{{secret:"))

    def test_decision(self):
        event = Event(id="e", name="n")
        good = Request.get("https://a.example/")
        validate_decision(event, Skip("x"))
        with self.assertRaises(InvalidOutput) as raised:
            validate_decision(event, Fire([good] * 17))
        self.assertIn("17 requests", str(raised.exception))
        with self.assertRaises(InvalidOutput) as raised:
            validate_decision(event, Fire([good, Request.get("gopher://b")]))
        self.assertTrue(str(raised.exception).startswith("request 1: "), raised.exception)

    def test_the_refused_rule(self):
        plain = Request.get("https://a.example/")
        with_secret = Request.get("https://a.example/").bearer("TOKEN")
        for event in (
            Event(id="{{secret:X}}", name="n"),
            Event(id="e", name="{{secret:X}}"),
            Event(id="e", name="n", user_id="u{{secret:"),
            Event(id="e", name="n", properties={"note": ["hi {{secret:TOKEN}}"]}),
            Event(id="e", name="n", properties={"{{secret:": 1}),
        ):
            with self.subTest(event=event):
                self.assertTrue(event_holds_placeholder(event))
                with self.assertRaises(Refused) as raised:
                    validate_decision(event, Fire([plain, with_secret]))
                self.assertTrue(str(raised.exception).startswith("request 1 "), raised.exception)
        event = Event(id="e", name="n", properties={"note": "{{secret:"})
        validate_decision(event, Fire([plain]))
        validate_decision(event, Skip("s"))
        validate_decision(event, Fire([Request("post", "https://a.example/", body=b"\xff{{secret:X}}")]))
        self.assertFalse(event_holds_placeholder(Event(id="e", name="n", properties={"a": "{secret:"})))
        validate_decision(Event(id="e", name="n"), Fire([with_secret]))


class ConfigTextTest(unittest.TestCase):
    def test_values_become_text_as_on_the_host(self):
        host = TestHost(config={"s": "x", "t": True, "f": False, "i": 3, "neg": -7, "fl": 2.5, "whole": 2.0, "big": 1e20, "small": 1e-7})
        self.assertEqual(
            host.settings,
            {"s": "x", "t": "true", "f": "false", "i": "3", "neg": "-7", "fl": "2.5", "whole": "2", "big": "100000000000000000000", "small": "0.0000001"},
        )
        self.assertEqual(host.config("t"), "true")
        host.set_config("n", 10)
        self.assertEqual(host.config("n"), "10")

    def test_other_values_are_refused(self):
        for value in (None, [1], {"a": 1}, b"x"):
            with self.subTest(value=value):
                with self.assertRaises(TypeError):
                    TestHost(config={"k": value})
        self.assertEqual(config_text(float("inf")), "inf")


class CapsTest(unittest.TestCase):
    def test_kv_key_and_value_caps_trap(self):
        host = TestHost()
        host.kv_set("k" * 1024, b"v")
        for call in (
            lambda: host.kv_get("k" * 1025),
            lambda: host.kv_delete("\u00e9" * 513),
            lambda: host.kv_set("v", b"x" * (1024 * 1024 + 1)),
            lambda: host.kv_increment("k" * 1025),
        ):
            with self.assertRaises(Trap):
                call()
        host.kv_set("v", b"x" * (1024 * 1024))
        self.assertNotIsInstance(Trap("x"), Exception)

    def test_kv_calls_per_invocation_are_capped(self):
        host = TestHost()
        for _ in range(10_000):
            host.kv_get("k")
        with self.assertRaises(Trap) as raised:
            host.kv_get("k")
        self.assertIn("10000 operations", str(raised.exception))
        host.begin_invocation()
        host.kv_get("k")

    def test_kv_bytes_written_per_invocation_are_capped(self):
        host = TestHost()
        value = b"x" * (1024 * 1024 - 1)
        for i in range(8):
            host.kv_set(str(i), value)
        host.kv_delete("0")
        with self.assertRaises(Trap) as raised:
            host.kv_increment("n")
        self.assertIn("bytes written", str(raised.exception))
        self.assertNotIn("n", host.kv)

    def test_logs_are_capped_and_cut_like_the_host(self):
        host = TestHost()
        host.info("x" * 3000)
        self.assertEqual(host.logs[0][1], "x" * 2048 + "\u2026 (952 bytes truncated)")
        for i in range(1, 150):
            host.debug("line %d" % i)
        self.assertEqual(len(host.logs), 100)
        self.assertEqual(host.logs[-1], ("debug", "line 99"))
        self.assertEqual(host.logs_dropped, 50)

    def test_truncate_cuts_on_a_character_boundary(self):
        self.assertEqual(truncate("h\u00e9llo", 10), "h\u00e9llo")
        self.assertEqual(truncate("h\u00e9llo", 2), "h\u2026 (5 bytes truncated)")


def modes(event, host):
    """A plugin doing what config `mode` says."""
    host.kv_increment("calls")
    mode = host.config("mode")
    request = Request.post(event.properties.get("url", "https://x.test/"))
    if mode == "err":
        raise PluginError("no")
    if mode == "bug":
        return {}["missing"]
    if mode == "kv-loop":
        while True:
            try:
                host.kv_get("k")
            except Exception:  # a trap is not an Exception
                pass
    if mode == "loud":
        for i in range(120):
            host.info(str(i))
        return Skip("\u00e9" * 3000)
    if mode == "none":
        return None
    if mode == "host-header":
        return Fire.one(request.header("Host", "x.test"))
    if mode == "userinfo":
        return Fire.one(Request.get("https://u:p@x.test/"))
    if mode == "bad-placeholder":
        return Fire.one(request.header("x-key", "{{secret:KEY"))
    if mode == "too-many":
        return Fire([request] * 17)
    if mode == "copy-note":
        return Fire.one(request.bearer("TOKEN").json({"note": event.properties.get("note")}))
    return Fire.one(request.bearer("TOKEN"))


class RunTest(unittest.TestCase):
    def run_mode(self, mode, **properties):
        host = TestHost(config={"mode": mode})
        return host, host.run(modes, Event(id="e", name="n", properties=properties))

    def test_ok(self):
        _, decision = self.run_mode("ok")
        self.assertEqual(len(decision.requests), 1)

    def test_errors_carry_the_hosts_kind(self):
        for mode, kind, text in (
            ("err", "plugin", "no"),
            ("bug", "plugin", "KeyError: 'missing'"),
            ("none", "plugin", "not Skip or Fire"),
            ("kv-loop", "trap", "operations"),
            ("host-header", "invalid_output", "'host' is set by the host"),
            ("userinfo", "invalid_output", "user:pass@"),
            ("bad-placeholder", "invalid_output", "malformed secret placeholder"),
            ("too-many", "invalid_output", "17 requests"),
        ):
            with self.subTest(mode=mode):
                with self.assertRaises(RunError) as raised:
                    self.run_mode(mode)
                self.assertEqual(raised.exception.kind, kind, raised.exception)
                self.assertIn(text, raised.exception.message)
        with self.assertRaises(RunError) as raised:
            self.run_mode("ok", url="ftp://x.test/")
        self.assertTrue(raised.exception.message.startswith("request 0: URL scheme"), raised.exception)

    def test_reasons_are_cut_and_dropped_log_lines_noted(self):
        host, decision = self.run_mode("loud")
        self.assertTrue(decision.reason.endswith("bytes truncated)"), decision.reason[-40:])
        self.assertLess(len(decision.reason.encode()), 4200)
        self.assertEqual(len(host.logs), 101)
        self.assertEqual(host.logs[-1], ("warn", "20 log lines dropped (cap 100 per invocation)"))
        host.run(modes, Event(id="e", name="n"))  # a new invocation: its own caps
        self.assertEqual(host.kv_get_counter("calls"), 2)

    def test_refused_when_the_event_holds_the_text_and_kv_writes_are_kept(self):
        host = TestHost(config={"mode": "copy-note"})
        hostile = Event(id="e", name="n", properties={"note": "{{secret:TOKEN}}"})
        with self.assertRaises(RunError) as raised:
            host.run(modes, hostile)
        self.assertEqual(raised.exception.kind, "refused")
        host.set_config("mode", "ok")  # only the plugin's own placeholder: refused all the same
        with self.assertRaises(RunError) as raised:
            host.run(modes, hostile)
        self.assertEqual(raised.exception.kind, "refused")
        self.assertEqual(host.kv_get_counter("calls"), 2)
        host.set_config("mode", "copy-note")
        host.run(modes, Event(id="e", name="n", properties={"note": "hello"}))


class ParseEventTest(unittest.TestCase):
    def test_properties_are_parsed(self):
        event = parse_event("e1", "x.y", None, 5, '{"a": 1}')
        self.assertEqual(event, Event(id="e1", name="x.y", user_id=None, timestamp_ms=5, properties={"a": 1}))
        self.assertEqual(parse_event("e1", "x.y", "u", 5, "").properties, {})

    def test_properties_must_be_a_json_object(self):
        for text in ("[1]", "nope", '"s"'):
            with self.subTest(text=text):
                with self.assertRaises(PluginError):
                    parse_event("e1", "x.y", None, 0, text)

    def test_to_json(self):
        event = Event(id="e1", name="x.y", user_id="u", timestamp_ms=7, properties={"a": 1})
        self.assertEqual(
            event.to_json(),
            {"id": "e1", "name": "x.y", "user_id": "u", "timestamp_ms": 7, "properties": {"a": 1}},
        )

    def test_describe_exception(self):
        self.assertEqual(describe_exception(KeyError("k")), "KeyError: 'k'")
        self.assertEqual(describe_exception(RuntimeError()), "RuntimeError")


@unittest.skipIf(wit_world is None, "no binding stubs in target/py-bindings (run scripts/plugins/python.sh)")
class ExportTest(unittest.TestCase):
    """wasmhook_plugin.export against the generated WIT types, with the
    imported functions (which raise NotImplementedError in the stubs)
    replaced by fakes."""

    def setUp(self):
        self.logs = []
        self.kv = {}
        patches = {
            (wit_log, "log"): lambda level, message: self.logs.append((level, message)),
            (wit_config, "get"): lambda key: {"greeting": "hi"}.get(key),
            (wit_kv, "get"): self.kv.get,
            (wit_kv, "set"): self.kv.__setitem__,
            (wit_kv, "increment"): lambda key, delta: delta,
        }
        for (module, name), fake in patches.items():
            original = getattr(module, name)
            setattr(module, name, fake)
            self.addCleanup(setattr, module, name, original)

    def call(self, transform, properties='{"n": 1}'):
        world = export(transform)()
        self.assertIn(wit_world.WitWorld, type(world).__mro__)
        event = wit_types.Event(id="e1", name="a.b", user_id=None, timestamp_ms=9, properties=properties)
        return world.transform(event)

    def test_fire_becomes_decision_fire_with_wit_requests(self):
        def transform(event, host):
            self.assertEqual(event, Event(id="e1", name="a.b", user_id=None, timestamp_ms=9, properties={"n": 1}))
            return Fire(
                [
                    Request.post("https://example.com/a").json({"g": host.config("greeting")}),
                    Request.delete("https://example.com/b").header("x-n", str(host.kv_increment("n", 3))),
                ]
            )

        decision = self.call(transform)
        self.assertIsInstance(decision, wit_types.Decision_Fire)
        self.assertEqual(
            decision.value,
            [
                wit_types.Request(
                    method=wit_types.Method.POST,
                    url="https://example.com/a",
                    headers=[("content-type", "application/json")],
                    body=b'{"g":"hi"}',
                ),
                wit_types.Request(method=wit_types.Method.DELETE, url="https://example.com/b", headers=[("x-n", "3")], body=b""),
            ],
        )

    def test_skip_becomes_decision_skip(self):
        decision = self.call(lambda event, host: Skip("not mine"))
        self.assertEqual(decision, wit_types.Decision_Skip("not mine"))

    def test_logs_and_kv_reach_the_imports(self):
        def transform(event, host):
            host.info("hello")
            host.kv_set("k", b"v")
            return Skip(repr(host.kv_get("k")))

        self.assertEqual(self.call(transform), wit_types.Decision_Skip("b'v'"))
        self.assertEqual(self.logs, [(wit_log.Level.INFO, "hello")])

    def test_plugin_error_becomes_err(self):
        def transform(event, host):
            raise PluginError("bad config")

        with self.assertRaises(componentize_py_types.Err) as raised:
            self.call(transform)
        self.assertEqual(raised.exception.value, "bad config")
        self.assertEqual(self.logs, [])

    def test_unexpected_exception_becomes_err_and_logs_the_traceback(self):
        def transform(event, host):
            return {}["missing"]

        with self.assertRaises(componentize_py_types.Err) as raised:
            self.call(transform)
        self.assertEqual(raised.exception.value, "KeyError: 'missing'")
        [(level, message)] = self.logs
        self.assertEqual(level, wit_log.Level.ERROR)
        self.assertIn("Traceback", message)

    def test_invalid_properties_become_err(self):
        with self.assertRaises(componentize_py_types.Err):
            self.call(lambda event, host: Skip("x"), properties="[]")

    def test_a_return_value_that_is_not_a_decision_becomes_err(self):
        with self.assertRaises(componentize_py_types.Err) as raised:
            self.call(lambda event, host: None)
        self.assertEqual(raised.exception.value, "transform returned None, not Skip or Fire")


if __name__ == "__main__":
    unittest.main()
