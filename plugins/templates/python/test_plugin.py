"""Unit tests of the {{name}} plugin's logic (plugin.py), under plain CPython.

Run: scripts/plugins/python.sh test <this directory>
(which puts this directory and plugins/sdk/python on PYTHONPATH).
"""

import unittest

from plugin import transform
from wasmhook_plugin import Event, Fire, PluginError, Skip, TestHost

URL = "https://example.com/hooks/in"


def event(name="order.paid", **properties):
    return Event(id="evt-1", name=name, user_id="u-1", timestamp_ms=1_700_000_000_000, properties=properties)


class TransformTest(unittest.TestCase):
    def test_posts_the_event_as_json(self):
        host = TestHost(config={"url": URL})
        decision = transform(event(total=42), host)
        self.assertIsInstance(decision, Fire)
        [request] = decision.requests
        self.assertEqual((request.method, request.url), ("post", URL))
        self.assertEqual(request.headers, [("content-type", "application/json")])
        self.assertEqual(
            request.json_body(),
            {"id": "evt-1", "name": "order.paid", "user_id": "u-1", "timestamp_ms": 1_700_000_000_000, "properties": {"total": 42}},
        )
        self.assertEqual(host.logs, [("info", "forwarding order.paid evt-1")])

    def test_config_event_selects_events(self):
        host = TestHost(config={"url": URL, "event": "order.*"})
        self.assertIsInstance(transform(event("order.shipped"), host), Fire)
        self.assertEqual(transform(event("user.login"), host), Skip('event "user.login" does not match "order.*"'))

    def test_missing_or_bad_url_is_an_error(self):
        for config in ({}, {"url": "  "}, {"url": "example.com/in"}):
            with self.subTest(config=config):
                with self.assertRaises(PluginError):
                    transform(event(), TestHost(config=config))


if __name__ == "__main__":
    unittest.main()
