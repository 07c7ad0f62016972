"""The bounded load generator: users on loopback through nginx (logins, conversation lists, message lists as
the synthetic-monitor user), at a fixed rate, bounded in request count and in time.

Open loop: request i is due at i / rate seconds; a pool of workers sends them, so a platform that slows down
shows as response times (answer time - due time) that grow, not as a generator that quietly sends less.
Every request is recorded (stats.Request); /health is probed once a second on its own to tell which release
answers (the API's answers do not say).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from .stats import USER_OPS, Request, Step, percentile, seen

USER = "synthetic-monitor"
# Of every 50 user requests: 1 login, 15 conversation lists, 34 message lists (a worker also logs in again when
# it was logged out). Each login adds a session the platform keeps for 12 hours, so logins are kept rare: the
# platform must not be slowed by the benchmark itself more than by its users.
MIX = ("login",) + ("conversations",) * 15 + ("messages",) * 34


@dataclass
class Answer:
    status: int | None
    body: dict
    maintenance: bool


def call(base_url: str, method: str, path: str, payload: dict | None = None, token: str | None = None,
         timeout: float = 10.0) -> Answer:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method)  # noqa: S310 (loopback URL)
    request.add_header("Content-Type", "application/json")
    request.add_header("X-Client", "bench-load")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback URL)
            raw, status, retry = response.read(), response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        raw, status, retry = exc.read(), exc.code, exc.headers.get("Retry-After")
    except (urllib.error.URLError, OSError):
        return Answer(None, {}, False)
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    return Answer(status, body if isinstance(body, dict) else {}, status == 503 and bool(retry))


class _User:
    """One worker's session: its bearer token and the conversations it last listed."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.conversations: list[str] = []


class LoadGenerator:
    """`rate` requests/s to `base_url` until `max_requests` were due or `max_seconds` passed (or stop())."""

    def __init__(self, base_url: str, password: str, *, rate: float, max_requests: int, max_seconds: float,
                 workers: int = 24, timeout: float = 10.0, health_every: float = 1.0, username: str = USER):
        if rate <= 0 or max_requests < 1 or max_seconds <= 0:
            raise ValueError("rate, max_requests and max_seconds must be positive")
        self.base_url = base_url.rstrip("/")
        self.password, self.username = password, username
        self.rate, self.max_requests, self.max_seconds = rate, max_requests, max_seconds
        self.timeout, self.health_every = timeout, health_every
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(workers)]
        self._threads.append(threading.Thread(target=self._schedule, daemon=True))
        self._threads.append(threading.Thread(target=self._health, daemon=True))
        self._t0 = 0.0

    def now(self) -> float:
        """Seconds on the load's clock (the clock of every Request)."""
        return time.monotonic() - self._t0

    def start(self) -> LoadGenerator:
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def wait(self) -> None:
        """Until every due request has been answered (or the time bound)."""
        deadline = time.monotonic() + self.max_seconds + self.timeout + 5
        while time.monotonic() < deadline:
            with self._lock:
                done = sum(r.op in USER_OPS for r in self.log)
            if done >= self.max_requests or self._stop.is_set():
                break
            time.sleep(0.1)
        self.stop()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _schedule(self) -> None:
        for i in range(self.max_requests):
            due = i / self.rate
            if due > self.max_seconds:
                break
            delay = due - self.now()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            self._queue.put((i, due))

    def _record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def _worker(self) -> None:
        user = _User()
        while True:
            item = self._queue.get()
            if item is None or self._stop.is_set():
                return
            i, due = item
            op = MIX[i % len(MIX)]
            if user.token is None:
                op = "login"
            elif op == "messages" and not user.conversations:
                op = "conversations"
            sent = self.now()
            answer = self._send(user, op)
            latency = self.now() - sent if answer.status is not None else None
            self._record(Request(op, due, sent, latency, answer.status, answer.maintenance))

    def _send(self, user: _User, op: str) -> Answer:
        if op == "login":
            answer = call(self.base_url, "POST", "/api/login", {"username": self.username, "password": self.password},
                          timeout=self.timeout)
            if answer.status == 200:
                user.token = answer.body.get("token")
            return answer
        if op == "conversations":
            answer = call(self.base_url, "GET", "/api/conversations", token=user.token, timeout=self.timeout)
            if answer.status == 200:
                user.conversations = [c["id"] for c in answer.body.get("conversations", [])][:5]
        else:
            conversation = random.choice(user.conversations)  # noqa: S311 (not cryptography)
            answer = call(self.base_url, "GET", f"/api/conversations/{conversation}/messages?limit=50",
                          token=user.token, timeout=self.timeout)
        if answer.status == 401:
            user.token = None  # logged out (a restore that dropped the session): log in again
        return answer

    def _health(self) -> None:
        while not self._stop.is_set() and self.now() <= self.max_seconds:
            sent = self.now()
            answer = call(self.base_url, "GET", "/health", timeout=self.timeout)
            latency = self.now() - sent if answer.status is not None else None
            self._record(Request("health", sent, sent, latency, answer.status, answer.maintenance,
                                 answer.body.get("version")))
            self._stop.wait(self.health_every)


def step(base_url: str, password: str, rate: float, seconds: float = 4.0, timeout: float = 10.0) -> Step:
    """Load at `rate` for `seconds` (bounded: rate*seconds requests); p95 of the response time from the moment each
    request was due, the rate achieved, the failed requests."""
    count = max(1, round(rate * seconds))
    generator = LoadGenerator(base_url, password, rate=rate, max_requests=count, max_seconds=seconds,
                              timeout=timeout, health_every=seconds * 10).start()
    generator.wait()
    users = [r for r in generator.log if r.op in USER_OPS]
    # Unanswered requests count as the timeout (worse than any limit).
    times = [(r.done - r.due) if r.latency is not None else timeout for r in users]
    # The rate at which the generator got them out (a generator short of workers sends late, not fewer).
    span = max(max((r.sent for r in users), default=0.0), (count - 1) / rate, 1e-9)
    achieved = len(users) / span if count > 1 else rate
    return Step(rate, achieved, percentile(times, 0.95), seen(users).failed)
