"""Parsing nginx stub_status for draining."""

from __future__ import annotations

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.nginx_status import (
    StubStatusError,
    in_flight,
    parse_stub_status,
)

SAMPLE = """Active connections: 7
server accepts handled requests
 120 120 345
Reading: 1 Writing: 4 Waiting: 2
"""


def test_parse_stub_status():
    assert parse_stub_status(SAMPLE) == {"active": 7, "accepts": 120, "handled": 120, "requests": 345,
                                         "reading": 1, "writing": 4, "waiting": 2}


def test_in_flight_excludes_the_probe_and_idle_keepalives():
    assert in_flight(parse_stub_status(SAMPLE)) == 4
    assert in_flight({"reading": 0, "writing": 1, "waiting": 9}) == 0


@pytest.mark.parametrize("text", ["", "<html>502 Bad Gateway</html>", "Active connections: x"])
def test_parse_rejects_other_pages(text):
    with pytest.raises(StubStatusError):
        parse_stub_status(text)
