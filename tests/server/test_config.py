"""Server settings from the environment and flags, and the JSON log format."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qingyin.server.config import ConfigError, ServerConfig
from qingyin.server.logs import JsonFormatter, request_id


def test_environment_then_flags():
    env = {"QINGYIN_PORT": "9000", "QINGYIN_MAX_CHARS": "200", "QINGYIN_API_KEYS": "a, b,,",
           "QINGYIN_UI": "false", "QINGYIN_CACHE_DIR": "off", "QINGYIN_TIMEOUT": "2.5"}
    config = ServerConfig.from_env(env, port=9100, threads=None)
    assert (config.port, config.max_chars, config.api_keys, config.ui, config.timeout) == (9100, 200, ("a", "b"),
                                                                                            False, 2.5)
    assert config.disk_cache is None
    assert ServerConfig.from_env({}).disk_cache.parts[-2:] == ("cache", "audio")  # in $QINGYIN_HOME
    assert ServerConfig.from_env({}, cache_dir="/tmp/x").disk_cache == Path("/tmp/x")


@pytest.mark.parametrize(("env", "message"), [
    ({"QINGYIN_PORT": "eighty"}, "QINGYIN_PORT must be a number"),
    ({"QINGYIN_UI": "maybe"}, "QINGYIN_UI must be true or false"),
    ({"QINGYIN_CONCURRENCY": "0"}, "concurrency must be a whole number >= 1"),
    ({"QINGYIN_TIMEOUT": "-1"}, "timeout must be > 0"),
    ({"QINGYIN_VOICE": "nobody"}, "unknown voice 'nobody'"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        ServerConfig.from_env(env)


def test_json_log_lines_carry_the_request_id():
    record = logging.makeLogRecord({"name": "qingyin.server", "levelname": "INFO", "msg": "request %s",
                                    "args": ("done",), "path": "/v1/tts", "status": 200})
    token = request_id.set("rid-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "request done" and entry["request_id"] == "rid-1"
    assert entry["path"] == "/v1/tts" and entry["status"] == 200 and entry["level"] == "info"
