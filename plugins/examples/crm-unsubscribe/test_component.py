"""crm-unsubscribe's built component under the real host (`wasmhook run`),
with the host's default limits (64 MiB, 100 ms).

Needs target/plugins/crm-unsubscribe.wasm (scripts/plugins/python.sh) and
the host binary (cargo build -p wasmhook; or set WASMHOOK to its path).
Outside CI the tests are skipped when either is missing; in CI (CI set)
a missing one is a failure, never a silent skip.
"""

import json
import os
import pathlib
import subprocess
import unittest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
COMPONENT = ROOT / "target" / "plugins" / "crm-unsubscribe.wasm"
WASMHOOK = pathlib.Path(os.environ.get("WASMHOOK", ROOT / "target" / "debug" / "wasmhook"))
EVENTS = ROOT / "examples" / "events"

EXPECTED_HEADERS = [["authorization", "Bearer {{secret:HUBSPOT_TOKEN}}"]]
UNSUBSCRIBE_PATH = "/communication-preferences/v4/statuses/jane.doe%2Bnews%40example.com/unsubscribe-all?channel=EMAIL"


def run(event, *config):
    """`wasmhook run` on an event file or dict; the printed JSON."""
    args = [str(WASMHOOK), "run", str(COMPONENT)]
    for setting in config:
        args += ["--config", setting]
    if isinstance(event, dict):
        args += ["--event", "-"]
        stdin = json.dumps(event)
    else:
        args += ["--event", str(EVENTS / event)]
        stdin = None
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):
        raise AssertionError("wasmhook run exited %d: %s" % (proc.returncode, proc.stderr))
    return json.loads(proc.stdout)


HAVE_PARTS = COMPONENT.is_file() and WASMHOOK.is_file()
if os.environ.get("CI") and not HAVE_PARTS:
    raise RuntimeError("CI: %s and %s must exist before these tests run" % (COMPONENT, WASMHOOK))


@unittest.skipUnless(HAVE_PARTS, "needs %s and %s" % (COMPONENT.name, WASMHOOK))
class ComponentTest(unittest.TestCase):
    def test_sample_event_fires_the_hubspot_unsubscribe_all(self):
        out = run("crm-unsubscribe.json")
        self.assertEqual(out["decision"], "fire", out)
        self.assertEqual(
            out["requests"],
            [
                {
                    "method": "POST",
                    "url": "https://api.hubapi.com" + UNSUBSCRIBE_PATH,
                    "headers": EXPECTED_HEADERS,
                    "body": "",
                }
            ],
        )
        self.assertEqual(
            out["logs"],
            [
                {
                    "level": "info",
                    "source": "log",
                    "message": "unsubscribing j***@example.com from all HubSpot email (reason: too many emails)",
                }
            ],
        )

    def test_reason_property_adds_the_contact_patch(self):
        out = run("crm-unsubscribe.json", "reason_property=unsubscribe_reason")
        self.assertEqual(out["decision"], "fire", out)
        self.assertEqual([r["method"] for r in out["requests"]], ["POST", "PATCH"])
        self.assertEqual(
            out["requests"][1],
            {
                "method": "PATCH",
                "url": "https://api.hubapi.com/crm/v3/objects/contacts/jane.doe%2Bnews%40example.com?idProperty=email",
                "headers": EXPECTED_HEADERS + [["content-type", "application/json"]],
                "body": '{"properties":{"unsubscribe_reason":"too many emails"}}',
            },
        )

    def test_sample_skip_event_skips(self):
        out = run("crm-unsubscribe-skip.json")
        self.assertEqual(out["decision"], "skip", out)
        self.assertEqual(out["reason"], 'properties.email "not-an-email" is not a valid email address')
        self.assertEqual(out["logs"], [])

    def test_api_base_points_at_a_local_sink(self):
        out = run("crm-unsubscribe.json", "api_base=http://127.0.0.1:9000/")
        self.assertEqual(out["decision"], "fire", out)
        self.assertEqual(out["requests"][0]["url"], "http://127.0.0.1:9000" + UNSUBSCRIBE_PATH)
        self.assertEqual(out["requests"][0]["headers"], EXPECTED_HEADERS)

    def test_other_events_skip(self):
        out = run({"id": "e1", "name": "email.opened", "properties": {"email": "jane@example.com"}})
        self.assertEqual(out["decision"], "skip", out)
        self.assertEqual(out["reason"], 'event "email.opened" is not handled (only email.unsubscribed)')

    def test_bad_api_base_is_a_plugin_error(self):
        out = run("crm-unsubscribe.json", "api_base=api.hubapi.com")
        self.assertEqual((out["decision"], out["kind"]), ("error", "plugin"), out)
        self.assertIn("config api_base must be an absolute http(s) URL", out["error"])


if __name__ == "__main__":
    unittest.main()
