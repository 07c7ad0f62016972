"""One rollback at a time per environment: the lock, exercised with real processes.

A second Python process (subprocess) holds or races for the lock, so that liveness checks, SIGKILL
and breaking a stale lock are tested as they happen for real, not with a mocked os.kill.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rollbackctl.errors import LockHeld, LockStale, RollbackctlError, UsageError
from rollbackctl.lock import EnvironmentLock, LockHolder, process_start, safe_name

SRC = Path(__file__).resolve().parents[2] / "src"
ENVIRONMENT = "/srv/rollback/inventories/production/hosts.yml"

# Child process: take the lock (options from argv), print one JSON line, then hold it until stdin closes.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from rollbackctl.errors import LockHeld
    from rollbackctl.lock import EnvironmentLock

    lock_dir, environment, incident, mode = sys.argv[1:5]
    go = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    while go is not None and not go.exists():
        time.sleep(0.001)
    lock = EnvironmentLock(Path(lock_dir), environment)
    try:
        holder = lock.acquire(incident, break_stale=(mode == "break"))
    except LockHeld as exc:
        print(json.dumps({"won": False, "error": type(exc).__name__, "message": str(exc)}), flush=True)
        sys.exit(0)
    print(json.dumps({"won": True, "holder": holder.to_dict()}), flush=True)
    sys.stdin.read()
    lock.release()
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def _spawn(lock_dir: Path, incident: str, mode: str = "plain", go: Path | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, str(lock_dir), ENVIRONMENT, incident, mode, *([str(go)] if go else [])]
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env())


def _answer(child: subprocess.Popen) -> dict:
    line = child.stdout.readline()
    assert line, f"child exited without answering (rc={child.poll()})"
    return json.loads(line)


@pytest.fixture
def holder_process(tmp_path):
    """A real second process holding the lock for INC-A; killed (SIGKILL) at teardown if still running."""
    child = _spawn(tmp_path, "INC-A")
    answer = _answer(child)
    assert answer["won"], answer
    yield child
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)
    child.stdin.close()
    child.stdout.close()


def _kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)  # reaped: the pid no longer exists


def _write_record(lock: EnvironmentLock, **fields) -> dict:
    record = {"incident_id": "INC-OLD", "pid": 999_999_999, "hostname": socket.gethostname(), "user": "mallory",
              "started_at": "2024-05-01T10:00:00+00:00", "command": "rollbackctl rollback", **fields}
    lock.lock_dir.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(json.dumps(record))
    return record


# -- a live holder in another process ---------------------------------------------------------------


def test_live_holder_in_another_process_refuses_and_is_named(tmp_path, holder_process):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    with pytest.raises(LockHeld) as held:
        lock.acquire("INC-B", break_stale=True, take_over_from="INC-A")  # neither option breaks a live lock
    error = held.value
    assert not isinstance(error, LockStale)
    assert error.exit_code == 5
    assert isinstance(error, RollbackctlError)
    message = str(error)
    assert f"@{socket.gethostname()}, pid {holder_process.pid}, incident INC-A, since " in message
    assert "never broken" in message
    assert error.holder.pid == holder_process.pid
    assert lock.status()["state"] == "held"
    assert lock.holder().incident_id == "INC-A"


def test_release_never_deletes_a_live_foreign_lock(tmp_path, holder_process):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    before = lock.path.read_bytes()
    assert lock.release() is False
    assert lock.path.read_bytes() == before


def test_killed_holder_is_stale_then_broken(tmp_path, holder_process):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _kill(holder_process)
    with pytest.raises(LockStale) as stale:
        lock.acquire("INC-B")
    message = str(stale.value)
    assert f"pid {holder_process.pid}, incident INC-A" in message
    assert "no longer running" in message
    assert "--break-lock" in message
    assert "`rollbackctl resume INC-A`" in message
    assert stale.value.exit_code == 5
    assert lock.status()["state"] == "stale"

    holder = lock.acquire("INC-B", break_stale=True)
    assert holder.incident_id == "INC-B"
    assert holder.pid == os.getpid()
    assert holder.broke.incident_id == "INC-A"
    assert holder.broke.pid == holder_process.pid
    assert holder.broke_reason.startswith("broken with --break-lock")
    assert lock.holder() == holder
    assert lock.release() is True
    assert not lock.path.exists()


def test_resume_of_the_same_incident_takes_over_a_stale_lock(tmp_path, holder_process):
    _kill(holder_process)
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    with pytest.raises(LockStale, match="you asked to resume INC-OTHER, but the lock belongs to incident INC-A"):
        lock.acquire("INC-OTHER", take_over_from="INC-OTHER")
    holder = lock.acquire("INC-A", take_over_from="INC-A")
    assert holder.broke.incident_id == "INC-A"
    assert holder.broke_reason.startswith("resumed incident INC-A")


def test_racing_breakers_of_one_stale_lock_cannot_both_win(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _write_record(lock)  # a dead holder
    go = tmp_path / "go"
    children = [_spawn(tmp_path, f"INC-{n}", "break", go) for n in range(6)]
    try:
        go.touch()
        answers = [_answer(child) for child in children]
        winners = [answer for answer in answers if answer["won"]]
        assert len(winners) == 1, answers
        assert all(answer["error"] == "LockHeld" for answer in answers if not answer["won"])
        assert winners[0]["holder"]["broke"]["incident_id"] == "INC-OLD"
        assert lock.holder().incident_id == winners[0]["holder"]["incident_id"]
    finally:
        for child in children:
            child.stdin.close()
            child.wait(timeout=10)
            child.stdout.close()
    assert not lock.path.exists(), "the winner released its lock on exit"


# -- in-process behaviour --------------------------------------------------------------------------------


def test_record_file_and_permissions(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["rollbackctl", "rollback", "--password", "hunter2", "--incident", "INC-1"])
    lock = EnvironmentLock(tmp_path / "locks", ENVIRONMENT)
    holder = lock.acquire("INC-1")
    assert lock.path.parent == tmp_path / "locks"
    assert lock.path.name == f"{safe_name(ENVIRONMENT)}.lock"
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
    record = json.loads(lock.path.read_text())
    assert {"incident_id", "pid", "hostname", "user", "started_at", "command"} <= set(record)
    assert record["pid"] == os.getpid()
    assert record["hostname"] == socket.gethostname()
    assert record["started_at"].endswith("+00:00")
    assert "hunter2" not in record["command"]
    assert record["command"].startswith("rollbackctl rollback --password ********")
    assert record["process_start"] == process_start(os.getpid())
    assert LockHolder.from_dict(record) == holder
    assert not [p for p in lock.lock_dir.iterdir() if p.name.endswith(".tmp")], "temporary files are removed"
    lock.release()


def test_same_process_cannot_take_the_lock_twice(tmp_path):
    first = EnvironmentLock(tmp_path, ENVIRONMENT)
    first.acquire("INC-1")
    with pytest.raises(LockHeld, match="incident INC-1"):
        EnvironmentLock(tmp_path, ENVIRONMENT).acquire("INC-2")
    assert first.release() is True


def test_different_environments_do_not_share_a_lock(tmp_path):
    first, second = EnvironmentLock(tmp_path, "/a/hosts.yml"), EnvironmentLock(tmp_path, "/b/hosts.yml")
    assert first.path != second.path
    with first.hold("INC-1"), second.hold("INC-2") as other:
        assert other.incident_id == "INC-2"


@pytest.mark.parametrize("environment", ["production", "/srv/x y/../ü ☃/hosts.yml", "", "///", "a" * 500])
def test_safe_name_works_for_any_environment(environment):
    name = safe_name(environment)
    assert name == safe_name(environment)
    assert len(name) <= 61
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in name)
    assert name != safe_name(environment + "x")


def test_hold_releases_on_error(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    with pytest.raises(RuntimeError), lock.hold("INC-1"):
        assert lock.status()["state"] == "held"
        raise RuntimeError("boom")
    assert lock.status()["state"] == "free"
    assert lock.holder() is None


def test_release_does_not_delete_a_lock_that_was_replaced(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    lock.acquire("INC-1")
    _write_record(lock, incident_id="INC-9", pid=1)  # somebody else's record now
    assert lock.release() is False
    assert lock.holder().incident_id == "INC-9"


def test_reused_pid_is_stale(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _write_record(lock, pid=os.getpid(), process_start="another-boot:12345")
    with pytest.raises(LockStale, match="pid was reused"):
        lock.acquire("INC-2")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "the file is empty"), (b"{not json", "not valid JSON"), (b"[1, 2]", "not a holder record"),
     (b'{"pid": 12}', "has no incident_id, hostname, user, started_at"), (b"\xff\xfe", "not UTF-8"),
     (b'{"incident_id": "I", "pid": -4, "hostname": "h", "user": "u", "started_at": "t"}', "invalid pid")],
)
def test_corrupt_lock_file_is_stale_and_can_be_broken(tmp_path, content, problem):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    tmp_path.joinpath(lock.path.name).write_bytes(content)
    with pytest.raises(LockStale, match=problem) as stale:
        lock.acquire("INC-1", take_over_from="INC-1")
    assert "--break-lock" in str(stale.value)
    assert lock.status()["state"] == "corrupt"
    assert lock.holder() is None
    holder = lock.acquire("INC-1", break_stale=True)
    assert holder.broke is None
    assert problem in holder.broke_reason


def test_holder_on_another_host_is_treated_as_held(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _write_record(lock, hostname="bastion-2.example.net", pid=4242, incident_id="INC-FAR")
    with pytest.raises(LockHeld) as held:
        lock.acquire("INC-FAR", take_over_from="INC-FAR")
    assert not isinstance(held.value, LockStale)
    message = str(held.value)
    assert "mallory@bastion-2.example.net, pid 4242, incident INC-FAR" in message
    assert "another host" in message
    assert "--break-lock" in message
    assert lock.status()["state"] == "foreign"
    holder = lock.acquire("INC-NEAR", break_stale=True)
    assert holder.broke.hostname == "bastion-2.example.net"


def test_status_for_display(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    assert lock.status() == {"environment": ENVIRONMENT, "lock_file": str(lock.path), "state": "free",
                             "holder": None, "problem": "", "message": f"{ENVIRONMENT} is not locked"}
    _write_record(lock)
    status = lock.status()
    assert status["state"] == "stale"
    assert status["holder"]["incident_id"] == "INC-OLD"
    assert "no longer exists" in status["problem"]
    assert "rollbackctl resume INC-OLD" in status["message"]
    json.dumps(status)


def test_empty_incident_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        EnvironmentLock(tmp_path, ENVIRONMENT).acquire("  ")


def test_acquire_is_quick(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    started = time.monotonic()
    for n in range(50):
        with lock.hold(f"INC-{n}"):
            pass
    assert time.monotonic() - started < 2


def test_a_process_this_user_may_not_signal_counts_as_alive(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _write_record(lock, pid=1)  # init: always running; os.kill(1, 0) raises PermissionError unless root
    with pytest.raises(LockHeld, match="pid 1, incident INC-OLD") as held:
        lock.acquire("INC-2", break_stale=True)
    assert not isinstance(held.value, LockStale)


# -- the kernel's flock decides ----------------------------------------------------------------------


# A process that only holds a flock on the lock file (no rollbackctl): argv[1] is the file.
FLOCK_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def _flock_is_free(path: Path) -> bool:
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_the_kernel_releases_a_killed_holders_flock_and_the_file_still_names_it(tmp_path, holder_process):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    assert not _flock_is_free(lock.path), "the live holder keeps an exclusive flock on the lock file"
    _kill(holder_process)
    assert _flock_is_free(lock.path), "SIGKILL: the kernel dropped the dead holder's flock"
    assert json.loads(lock.path.read_text())["incident_id"] == "INC-A", "the record still names the dead holder"
    with pytest.raises(LockStale, match="incident INC-A"):
        lock.acquire("INC-B")


def test_the_flock_and_not_the_pid_says_whether_a_lock_is_held(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    _write_record(lock)  # names a pid that does not exist
    child = subprocess.Popen([sys.executable, "-c", FLOCK_HOLDER, str(lock.path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as held:  # e.g. a holder in another pid namespace: its pid means nothing here
            lock.acquire("INC-B", break_stale=True, take_over_from="INC-OLD")
        assert not isinstance(held.value, LockStale)
        assert "never broken" in str(held.value) and "incident INC-OLD" in str(held.value)
        assert lock.status()["state"] == "held"
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
    with pytest.raises(LockStale):
        lock.acquire("INC-B")


def test_an_unusable_lock_file_is_reported_naming_it_and_never_replaced_silently(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    lock.path.write_bytes(b"{not json")
    for resume in (None, "INC-1"):
        with pytest.raises(LockStale) as stale:
            lock.acquire("INC-1", take_over_from=resume)
        assert stale.value.exit_code == 5
        assert str(lock.path) in str(stale.value) and "not valid JSON" in str(stale.value)
        assert "--break-lock" in str(stale.value)
        assert lock.path.read_bytes() == b"{not json", "refused: the file is left as it was"
    holder = lock.acquire("INC-1", break_stale=True)
    assert holder.broke is None
    assert holder.broke_reason.startswith("broken with --break-lock: an unusable lock file: the file is not valid JSON")
    assert lock.holder() == holder
    assert lock.release() is True


def test_a_lock_file_that_cannot_be_opened_is_refused_naming_it(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    lock.path.mkdir()  # not a file (unreadable even for root)
    for break_stale in (False, True):
        with pytest.raises(LockHeld) as refused:
            lock.acquire("INC-1", break_stale=break_stale)
        assert refused.value.exit_code == 5
        assert str(lock.path) in str(refused.value) and "cannot be opened" in str(refused.value)
    assert lock.path.is_dir()
    assert lock.status()["state"] == "corrupt"


def test_breaking_an_unusable_lock_file_is_said(tmp_path, capsys):
    from rollbackctl.procedures import Console, say_broken

    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    lock.path.write_bytes(b"")
    say_broken(lock.acquire("INC-1", break_stale=True), Console(), "broke")
    err = capsys.readouterr().err
    assert err.startswith("rollbackctl: broke an unusable lock (broken with --break-lock: an unusable lock file: ")
    assert "the file is empty" in err
    lock.release()


def test_release_drops_the_flock(tmp_path):
    lock = EnvironmentLock(tmp_path, ENVIRONMENT)
    lock.acquire("INC-1")
    assert not _flock_is_free(lock.path)
    path = lock.path
    assert lock.release() is True
    assert not path.exists()
    with lock.hold("INC-2"):
        assert not _flock_is_free(lock.path)
    assert not lock.path.exists()
