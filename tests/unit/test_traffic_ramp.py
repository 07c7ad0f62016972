"""The reopening ramp's pure logic: nginx's hash, the split, the file, the judgment of a step.

That the hash and the split agree with a real nginx is checked in tests/integration/test_nginx_ramp.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.traffic_ramp import (
    check_steps,
    in_step,
    judge,
    murmur_hash2,
    parse_percent,
    parse_traffic,
    percentile,
    render,
    synthetic_keys,
    threshold,
)

ROLE = Path(__file__).resolve().parents[2] / "roles" / "maintenance_mode"


def test_murmur_hash2_known_values():
    # Values of nginx's ngx_murmur_hash2 (seed 0); every tail length 0..3 is exercised.
    assert murmur_hash2(b"") == 0
    assert {len(key) % 4 for key in (b"a", b"ab", b"abc", b"abcd")} == {0, 1, 2, 3}
    assert len({murmur_hash2(key) for key in (b"a", b"ab", b"abc", b"abcd", b"abcde")}) == 5
    assert all(0 <= murmur_hash2(bytes([n]) * n) <= 0xFFFFFFFF for n in range(40))


def test_a_client_let_through_stays_let_through():
    keys = [f"Bearer user-{n}" for n in range(2000)]
    shares = {}
    for low, high in ((10, 25), (25, 50), (50, 99)):
        assert {key for key in keys if in_step(key, low)} <= {key for key in keys if in_step(key, high)}
    for percent in (10, 25, 50):
        shares[percent] = sum(in_step(key, percent) for key in keys) / len(keys)
        assert abs(shares[percent] - percent / 100) < 0.05, shares
    assert not any(in_step(key, 0) for key in keys)
    assert all(in_step(key, 100) for key in keys)


def test_threshold_scales_percent_to_32_bits():
    assert threshold(0) == 0
    assert threshold(50) == 0xFFFFFFFF // 2
    assert threshold(100) == 0xFFFFFFFF


def test_synthetic_keys_fall_on_each_side():
    for percent in (1, 10, 50, 99):
        inside, outside = synthetic_keys(percent)
        assert in_step(inside, percent)
        assert not in_step(outside, percent)
        assert inside.startswith("Bearer ramp-probe-")
    assert synthetic_keys(100)[1] is None
    inside, _outside = synthetic_keys(50, previous=25)
    assert in_step(inside, 50) and not in_step(inside, 25)


@pytest.mark.parametrize("steps", [[10, 25, 50], ["5", 95], [], [1, 99]])
def test_good_steps(steps):
    assert check_steps(steps) == [int(step) for step in steps]


@pytest.mark.parametrize(("steps", "message"), [
    ([50, 25], "must increase"),
    ([25, 25], "must increase"),
    ([0], "between 1 and 99"),
    ([100], "between 1 and 99"),
    ([-5], "between 1 and 99"),
    (["ten"], "whole percent"),
    ([True], "whole percent"),
    ([12.5], "whole percent"),
])
def test_bad_steps(steps, message):
    with pytest.raises(ValueError, match=message):
        check_steps(steps)


def test_render_and_parse_percent():
    text = render("chatbot_maintenance_ramp_open", "Authorization", "$remote_addr", 25)
    assert parse_percent(text) == 25
    assert "    25% 1;\n    * 0;\n" in text
    assert "map $http_authorization $chatbot_maintenance_ramp_open_key {" in text
    closed = render("chatbot_maintenance_ramp_open", "X-User-Token", "$http_x_forwarded_for", 0)
    assert parse_percent(closed) == 0
    assert "% 1;" not in closed
    assert "$http_x_user_token" in closed
    assert parse_percent("# something else\n") is None
    assert parse_percent("") is None


@pytest.mark.parametrize(("variable", "header", "fallback"), [
    ("bad-name", "Authorization", "$remote_addr"),
    ("ok", "Bad Header", "$remote_addr"),
    ("ok", "Authorization", "remote_addr"),
    ("ok", "Authorization", "$remote_addr; return 200"),
    ("ok", "Authorization", '$remote_addr"'),
])
def test_render_refuses_what_is_not_nginx_variables(variable, header, fallback):
    with pytest.raises(ValueError):
        render(variable, header, fallback, 10)


def test_the_role_writes_the_same_closed_file_the_module_would():
    environment = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True,  # noqa: S701 - nginx text
                                     loader=jinja2.FileSystemLoader(str(ROLE / "templates")))
    for header, fallback in (("Authorization", "$remote_addr"), ("X-Client-Key", "$http_x_forwarded_for")):
        written = environment.get_template("chatbot-maintenance-ramp.conf.j2").render(
            maintenance_mode_ramp_key_header=header, maintenance_mode_ramp_key_fallback=fallback)
        assert written == render("chatbot_maintenance_ramp_open", header, fallback, 0)


def _line(msec, status=200, rt=0.01, upstream="127.0.0.1:3000", synthetic=""):
    return json.dumps({"msec": msec, "status": status, "rt": rt, "upstream": upstream, "method": "GET",
                       "uri": "/api/x", "synthetic": synthetic})


def test_parse_traffic_keeps_requests_that_reached_the_app_in_the_window():
    lines = [_line(99.0), _line(100.5), _line(101.0, status=503, upstream="-"), _line(102.0, status=500),
             _line(200.0), "not json", json.dumps({"status": 200}), _line(101.5, synthetic="synthetic")]
    requests = parse_traffic(lines, 100.0, 150.0)
    assert [request["status"] for request in requests] == [200, 500, 200]
    assert [request["synthetic"] for request in requests] == ["", "", "synthetic"]


def test_percentile():
    assert percentile([], 0.95) is None
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_judge_healthy_and_each_reason():
    ok = [{"status": 200, "request_time": 0.1}] * 19 + [{"status": 500, "request_time": 0.1}]
    assert judge(ok, 3, 0.05, 3.0)["healthy"]
    bad = judge([*ok, {"status": 502, "request_time": 0.1}], 3, 0.05, 3.0)
    assert not bad["healthy"] and "5xx ratio" in bad["reasons"][0]
    slow = judge([{"status": 200, "request_time": 4.0}] * 5, 3, 0.05, 3.0)
    assert not slow["healthy"] and "p95 latency 4.000s" in slow["reasons"][0]
    assert slow["p95_s"] == 4.0


def test_no_data_is_never_healthy():
    verdict = judge([], 0, 0.05, 3.0)
    assert not verdict["healthy"]
    assert verdict["error_ratio"] is None
    assert "fewer than the 1 needed" in verdict["reasons"][0]
    assert not judge([{"status": 200, "request_time": 0.1}] * 2, 3, 0.05, 3.0)["healthy"]
