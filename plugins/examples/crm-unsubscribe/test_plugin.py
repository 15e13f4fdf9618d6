"""Unit tests of crm-unsubscribe's logic (plugin.py) under plain CPython.

Run: scripts/plugins/python.sh test   (or, from this directory,
PYTHONPATH=../../sdk/python python3 -m unittest -v)
"""

import json
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(HERE), str(ROOT / "plugins" / "sdk" / "python")]

from plugin import is_valid_email, mask_email, transform  # noqa: E402
from wasmhook_plugin import Event, Fire, PluginError, Skip, TestHost  # noqa: E402

API = "https://api.hubapi.com"
UNSUBSCRIBE = API + "/communication-preferences/v4/statuses/%s/unsubscribe-all?channel=EMAIL"
CONTACT = API + "/crm/v3/objects/contacts/%s?idProperty=email"


def unsubscribed(**properties):
    return Event(id="evt-1", name="email.unsubscribed", user_id="u-1", timestamp_ms=1, properties=properties)


def sample(name):
    """An event from examples/events, as the host would pass it."""
    data = json.loads((ROOT / "examples" / "events" / name).read_text())
    return Event(
        id=data["id"],
        name=data["name"],
        user_id=data.get("user_id"),
        timestamp_ms=0,
        properties=data.get("properties", {}),
    )


class FiresTest(unittest.TestCase):
    def fire(self, event, config=None, count=1):
        host = TestHost(config=config)
        decision = transform(event, host)
        self.assertIsInstance(decision, Fire)
        self.assertEqual(len(decision.requests), count)
        return decision.requests, host

    def test_unsubscribe_posts_unsubscribe_all_for_the_email(self):
        (request,), host = self.fire(unsubscribed(email="jane@example.com", reason="too many emails"))
        self.assertEqual(request.method, "post")
        self.assertEqual(request.url, UNSUBSCRIBE % "jane%40example.com")
        self.assertEqual(request.headers, [("authorization", "Bearer {{secret:HUBSPOT_TOKEN}}")])
        self.assertEqual(request.body, b"")
        self.assertEqual(
            host.logs, [("info", "unsubscribing j***@example.com from all HubSpot email (reason: too many emails)")]
        )

    def test_email_is_percent_encoded_in_the_path(self):
        cases = [
            ("jane.doe+news@example.com", "jane.doe%2Bnews%40example.com"),
            ("o'brien@example.ie", "o%27brien%40example.ie"),
            ("a/b?c#d@example.com", "a%2Fb%3Fc%23d%40example.com"),
            ("josé@exämple.de", "jos%C3%A9%40ex%C3%A4mple.de"),
        ]
        for email, encoded in cases:
            with self.subTest(email=email):
                (request,), _ = self.fire(unsubscribed(email=email))
                self.assertEqual(request.url, UNSUBSCRIBE % encoded)

    def test_surrounding_whitespace_is_ignored(self):
        (request,), host = self.fire(unsubscribed(email="  jane@example.com\n", reason="  spam  "))
        self.assertEqual(request.url, UNSUBSCRIBE % "jane%40example.com")
        self.assertIn("(reason: spam)", host.logs[0][1])

    def test_missing_or_unusable_reason_defaults_to_user_request(self):
        for props in ({}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": 3}):
            with self.subTest(props=props):
                _, host = self.fire(unsubscribed(email="jane@example.com", **props))
                self.assertIn("(reason: user request)", host.logs[0][1])

    def test_reason_property_adds_a_patch_recording_the_reason(self):
        (unsubscribe, record), host = self.fire(
            unsubscribed(email="jane.doe+news@example.com", reason="trop de courriels \u2709"),
            {"reason_property": " unsubscribe_reason "},
            count=2,
        )
        self.assertEqual(unsubscribe.url, UNSUBSCRIBE % "jane.doe%2Bnews%40example.com")
        self.assertEqual(record.method, "patch")
        self.assertEqual(record.url, CONTACT % "jane.doe%2Bnews%40example.com")
        self.assertEqual(
            record.headers,
            [("authorization", "Bearer {{secret:HUBSPOT_TOKEN}}"), ("content-type", "application/json")],
        )
        # Compact UTF-8 JSON.
        self.assertEqual(record.body, '{"properties":{"unsubscribe_reason":"trop de courriels \u2709"}}'.encode())
        self.assertEqual(
            host.logs,
            [
                (
                    "info",
                    "unsubscribing j***@example.com from all HubSpot email "
                    "(reason: trop de courriels \u2709; recording it in unsubscribe_reason)",
                )
            ],
        )

    def test_recorded_reason_defaults_and_is_capped(self):
        (_, record), _ = self.fire(unsubscribed(email="jane@example.com"), {"reason_property": "optout_note"}, count=2)
        self.assertEqual(record.json_body(), {"properties": {"optout_note": "user request"}})
        (_, record), _ = self.fire(
            unsubscribed(email="jane@example.com", reason="x" * 600), {"reason_property": "optout_note"}, count=2
        )
        recorded = record.json_body()["properties"]["optout_note"]
        self.assertEqual(len(recorded), 500)
        self.assertTrue(recorded.endswith("\u2026"))

    def test_blank_reason_property_records_nothing(self):
        self.fire(unsubscribed(email="jane@example.com", reason="x"), {"reason_property": "  "})

    def test_api_base_points_the_requests_elsewhere(self):
        for base in ("http://127.0.0.1:9000", "http://127.0.0.1:9000/", "  http://127.0.0.1:9000/hubspot/ "):
            with self.subTest(base=base):
                (unsubscribe, record), _ = self.fire(
                    unsubscribed(email="jane@example.com"), {"api_base": base, "reason_property": "r"}, count=2
                )
                expected = base.strip().rstrip("/")
                self.assertEqual(
                    unsubscribe.url,
                    expected + "/communication-preferences/v4/statuses/jane%40example.com/unsubscribe-all?channel=EMAIL",
                )
                self.assertEqual(record.url, expected + "/crm/v3/objects/contacts/jane%40example.com?idProperty=email")
                self.assertIn(("authorization", "Bearer {{secret:HUBSPOT_TOKEN}}"), unsubscribe.headers)

    def test_blank_api_base_means_hubspot(self):
        (request,), _ = self.fire(unsubscribed(email="jane@example.com"), {"api_base": "  "})
        self.assertTrue(request.url.startswith(API + "/"))

    def test_sample_event_fires(self):
        (request,), host = self.fire(sample("crm-unsubscribe.json"))
        self.assertEqual(request.url, UNSUBSCRIBE % "jane.doe%2Bnews%40example.com")
        self.assertIn("(reason: too many emails)", host.logs[0][1])


class SkipsTest(unittest.TestCase):
    def skip_reason(self, event):
        host = TestHost()
        decision = transform(event, host)
        self.assertIsInstance(decision, Skip)
        self.assertEqual(host.logs, [])
        return decision.reason

    def test_other_events_are_skipped(self):
        event = Event(id="e", name="email.opened", properties={"email": "jane@example.com"})
        self.assertEqual(self.skip_reason(event), 'event "email.opened" is not handled (only email.unsubscribed)')

    def test_missing_email_is_skipped(self):
        self.assertEqual(self.skip_reason(unsubscribed()), "properties.email is missing")
        self.assertEqual(self.skip_reason(unsubscribed(email=None)), "properties.email is missing")

    def test_non_string_email_is_skipped(self):
        self.assertEqual(self.skip_reason(unsubscribed(email=42)), "properties.email is not a string")
        self.assertEqual(self.skip_reason(unsubscribed(email=["a@b.c"])), "properties.email is not a string")

    def test_empty_email_is_skipped(self):
        self.assertEqual(self.skip_reason(unsubscribed(email="  ")), "properties.email is empty")

    def test_invalid_email_is_skipped_with_the_value(self):
        self.assertEqual(
            self.skip_reason(unsubscribed(email="jane at example")),
            'properties.email "jane at example" is not a valid email address',
        )

    def test_sample_skip_event_skips(self):
        self.assertEqual(
            self.skip_reason(sample("crm-unsubscribe-skip.json")),
            'properties.email "not-an-email" is not a valid email address',
        )


class ConfigErrorsTest(unittest.TestCase):
    def test_invalid_api_base_is_an_error(self):
        for base in ("api.hubapi.com", "ftp://api.hubapi.com", "https://", "https://api hubapi.com"):
            with self.subTest(base=base):
                with self.assertRaises(PluginError) as raised:
                    transform(unsubscribed(email="jane@example.com"), TestHost(config={"api_base": base}))
                self.assertIn("config api_base must be an absolute http(s) URL", str(raised.exception))

    def test_invalid_reason_property_is_an_error(self):
        for name in ("unsubscribe reason", "reason/../x", "r\u00e9ason", "x" * 101):
            with self.subTest(name=name):
                with self.assertRaises(PluginError) as raised:
                    transform(unsubscribed(email="jane@example.com"), TestHost(config={"reason_property": name}))
                self.assertIn("config reason_property must be a HubSpot internal property name", str(raised.exception))


class EmailTest(unittest.TestCase):
    def test_valid_addresses(self):
        for email in ("a@b.co", "jane.doe+news@example.com", "x_y-z@sub.example.co.uk", "josé@exämple.de"):
            with self.subTest(email=email):
                self.assertTrue(is_valid_email(email))

    def test_invalid_addresses(self):
        for email in (
            "not-an-email",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane@@example.com",
            "ja@ne@example.com",
            "jane doe@example.com",
            "jane@exa mple.com",
            ".jane@example.com",
            "jane.@example.com",
            "ja..ne@example.com",
            "jane@example..com",
            "jane@-example.com",
            "jane@example-.com",
            "jane@exam_ple.com",
            '"jane"@example.com',
            "jane@[127.0.0.1]",
            "jane\r\n@example.com",
            "a" * 65 + "@example.com",
            "a@" + "b" * 250 + ".com",
        ):
            with self.subTest(email=email):
                self.assertFalse(is_valid_email(email))

    def test_mask(self):
        self.assertEqual(mask_email("jane@example.com"), "j***@example.com")


if __name__ == "__main__":
    unittest.main()
