"""The request log is one JSON object per line with the fields given as extras."""

from __future__ import annotations

import json
import logging

from consentry.web.logs import JsonFormatter


def test_records_become_json_with_their_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "consentry.http",
            "levelname": "INFO",
            "msg": "request",
            "request_id": "abc",
            "status": 201,
            "path": "/v1/contacts",
        }
    )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "request"
    assert entry["level"] == "info"
    assert (entry["request_id"], entry["status"], entry["path"]) == ("abc", 201, "/v1/contacts")
    assert "args" not in entry
    assert "\n" not in line
