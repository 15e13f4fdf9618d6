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
    Event,
    Fire,
    PluginError,
    Request,
    Skip,
    TestHost,
    counter_value,
    describe_exception,
    export,
    parse_event,
    secret,
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
