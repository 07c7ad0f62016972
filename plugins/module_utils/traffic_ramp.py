"""Reopening in steps at nginx: which clients a step lets through, and whether the step was healthy.

nginx's ``split_clients`` hashes a key with MurmurHash2 and picks the first part whose cumulative share
covers the hash. A step of ``P`` percent lets through the clients whose key hashes below ``P`` percent of
the 32-bit range, so a client let through at 25 % is still let through at 50 %: a restored user stays
restored. The same hash tells the module which synthetic keys fall inside or outside a step, so that it can
check what nginx really serves for each side.

A step is judged from the traffic nginx logged while it was open (the ``chatbot_traffic`` JSON log of role
nginx_front): requests that reached the app (an upstream address), their 5xx ratio and p95 latency. Fewer
requests than the minimum is not healthy: no data never counts as a pass.
"""

from __future__ import annotations

import json
import math
import re

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
HEADER = "# chatbot maintenance ramp: open-percent="
KEY_PATTERN = re.compile(r"^(\$[a-z_][a-z0-9_]*)+$")


def murmur_hash2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (seed 0), as split_clients uses it."""
    length = len(data)
    h = length & _MASK
    index = 0
    while length >= 4:
        k = data[index] | data[index + 1] << 8 | data[index + 2] << 16 | data[index + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
        index += 4
        length -= 4
    if length == 3:
        h ^= data[index + 2] << 16
    if length >= 2:
        h ^= data[index + 1] << 8
    if length >= 1:
        h ^= data[index]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def threshold(percent: float) -> int:
    """The hash bound of a ``percent%`` part (nginx stores percents x 100 and scales to 32 bits)."""
    return int(0xFFFFFFFF * round(percent * 100) // 10000)


def in_step(key: str, percent: float) -> bool:
    """Whether a client with this key is let through at ``percent``."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return murmur_hash2(key.encode("utf-8")) < threshold(percent)


def synthetic_keys(percent: float, previous: float = 0, prefix: str = "Bearer ramp-probe-") -> tuple[str, str | None]:
    """A header value this step newly lets through and one it holds back (None at 100 %), found by counting up.

    The first one is outside the ``previous`` step, so that it passing proves the new step is the one served.
    """
    inside = outside = None
    number = 0
    while inside is None or (outside is None and percent < 100):
        key = f"{prefix}{number}"
        if in_step(key, percent):
            if not in_step(key, previous):
                inside = inside or key
        else:
            outside = outside or key
        number += 1
    return inside, outside


def check_steps(steps: list) -> list[int]:
    """Steps as strictly increasing whole percents in 1..99 (100 is the final reopening itself)."""
    result = []
    for step in steps:
        whole = (isinstance(step, int) and not isinstance(step, bool)) or (isinstance(step, str) and step.isdigit())
        if not whole:
            raise ValueError(f"a ramp step must be a whole percent, got {step!r}")
        value = int(step)
        if not 1 <= value <= 99:
            raise ValueError(f"a ramp step must be between 1 and 99 percent, got {value}")
        if result and value <= result[-1]:
            raise ValueError(f"ramp steps must increase: {value} after {result[-1]}")
        result.append(value)
    return result


def header_variable(header: str) -> str:
    """The nginx variable of a request header: Authorization -> $http_authorization."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", header):
        raise ValueError(f"not a header name: {header!r}")
    return "$http_" + header.lower().replace("-", "_")


def render(variable: str, header: str, fallback: str, percent: int) -> str:
    """The http-level file, self-contained (it holds its key too, so any subset of the maintenance files loads).

    ``$variable`` is 1 for the clients let through, 0 for the others; the key is the value of ``header`` when
    the request has one (a user's token), else ``fallback`` (the client's address).
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", variable):
        raise ValueError(f"not an nginx variable name: {variable!r}")
    if not KEY_PATTERN.fullmatch(fallback):
        raise ValueError(f"the ramp key fallback must be nginx variables only (like $remote_addr), got {fallback!r}")
    source = header_variable(header)
    parts = [f"    {percent}% 1;"] if percent > 0 else []
    body = "\n".join([*parts, "    * 0;"])
    return (f"{HEADER}{percent}\n"
            "# Written by chatbot.rollback (maintenance_mode, nginx_ramp): the clients let through while reopening,\n"
            f"# split on {header} when the request has one, else on {fallback}.\n"
            f"map {source} ${variable}_key {{\n    default {source};\n    \"\" {fallback};\n}}\n"
            f'split_clients "${variable}_key" ${variable} {{\n{body}\n}}\n')


def parse_percent(text: str) -> int | None:
    """The percent a ramp file says is open, None when the text is not a ramp file."""
    first = text.split("\n", 1)[0]
    if not first.startswith(HEADER):
        return None
    value = first[len(HEADER):].strip()
    return int(value) if value.isdigit() else None


def parse_traffic(lines: list[str], since: float, until: float) -> list[dict]:
    """Requests that reached an upstream between two epoch times, from chatbot_traffic JSON lines."""
    requests = []
    for line in lines:
        try:
            entry = json.loads(line)
            when = float(entry["msec"])
        except (ValueError, KeyError, TypeError):
            continue
        upstream = str(entry.get("upstream", ""))
        if not since <= when <= until or upstream in ("", "-"):
            continue
        try:
            requests.append({"status": int(entry["status"]), "request_time": float(entry.get("rt", 0) or 0),
                             "uri": str(entry.get("uri", "")), "synthetic": str(entry.get("synthetic") or "")})
        except (ValueError, TypeError):
            continue
    return requests


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def judge(requests: list[dict], min_requests: int, max_error_ratio: float, latency_threshold: float) -> dict:
    """The verdict of one step: counts, 5xx ratio, p95 latency and the reasons it failed, if any."""
    count = len(requests)
    errors = sum(1 for request in requests if request["status"] >= 500)
    ratio = errors / count if count else None
    p95 = percentile([request["request_time"] for request in requests], 0.95)
    reasons = []
    if count < max(1, min_requests):
        reasons.append(f"{count} requests reached the app, fewer than the {max(1, min_requests)} needed to judge")
    if ratio is not None and ratio > max_error_ratio:
        reasons.append(f"5xx ratio {ratio:.3f} above {max_error_ratio}")
    if p95 is not None and p95 > latency_threshold:
        reasons.append(f"p95 latency {p95:.3f}s above {latency_threshold}s")
    return {"requests": count, "errors": errors, "error_ratio": None if ratio is None else round(ratio, 4),
            "p95_s": p95, "healthy": not reasons, "reasons": reasons}
