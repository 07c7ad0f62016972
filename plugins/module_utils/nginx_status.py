"""Parsing nginx stub_status and deciding when in-flight requests have drained."""

from __future__ import annotations

import re

_PATTERN = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s+server accepts handled requests\s+"
    r"(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s+"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)",
)


class StubStatusError(ValueError):
    """The text is not nginx stub_status output."""


def parse_stub_status(text: str) -> dict[str, int]:
    match = _PATTERN.search(text)
    if not match:
        raise StubStatusError("not nginx stub_status output: " + text[:80].replace("\n", " "))
    return {key: int(value) for key, value in match.groupdict().items()}


def in_flight(status: dict[str, int]) -> int:
    """Requests being read or answered, less the stub_status request that measured them.

    Idle keep-alive connections (`waiting`) carry no request and do not count.
    """
    return max(0, status["reading"] + status["writing"] - 1)
