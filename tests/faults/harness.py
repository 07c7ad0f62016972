"""The fault-injection harness: rollbackctl runs paused at a precise point, faults injected there, and the checks
every fault must pass - a safe state, a record that says why, no document lost, and a resume that gets past it.

Points are reached deterministically, never by sleeping: the wrapper pauses at a phase boundary (launch.py) or
ansible-playbook pauses at a play, task, handler or at its stats (callback_plugins/fault_pause.py); each writes a
marker file when it stands there and goes on when the harness writes the release file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import document_id, open_archive
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    archive_path,
    load_manifest,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import check as check_backup
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import database_facts
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

HERE = Path(__file__).resolve().parent
LAUNCH = HERE / "launch.py"
CALLBACKS = HERE / "callback_plugins"
AUTHORITY = ("--decided-by", "Dana", "--role", "lead-devops-engineer")
TARGET, BAD = "v0.9.0", "v1.0.0"
# Collections whose content the rollback must give back exactly (sessions grow with every login, conversations
# carry activity times): as tests/sandbox/test_04_rollback.py.
STABLE = ("users", "messages", "meta")
# Collections whose documents never change once written: a document there must survive with its content.
IMMUTABLE = ("messages",)
BACKUP = "pre-deploy-v1.0.0"


class FaultError(AssertionError):
    """A step of the harness did not happen as a fault test needs it."""


def _sha(raw: bytes) -> str:
    return hashlib.sha256(bytes(raw)).hexdigest()


Documents = dict[str, dict[str, str]]  # collection -> {repr(_id): sha256 of the raw BSON}


def archive_documents(path: Path) -> Documents:
    found: Documents = {}
    handle, reader = open_archive(str(path))
    with handle:
        for _db, collection, _metadata, documents in reader.collections_data():
            entry = found.setdefault(collection, {})
            for raw in documents:
                entry[repr(document_id(raw))] = _sha(raw)
    return found


@dataclass
class Probe:
    status: int | None
    retry_after: str | None = None
    error: str | None = None

    @property
    def maintenance(self) -> bool:
        return self.status == 503 and bool(self.retry_after)

    def __str__(self) -> str:
        if self.status is None:
            return f"nothing served ({self.error})"
        return "maintenance page (503 + Retry-After)" if self.maintenance else f"HTTP {self.status}"


class Platform:
    """The sandbox's parts as an operator (or a fault) touches them."""

    def __init__(self, sandbox, mongo, incidents: Path):
        self.sandbox = sandbox
        self.mongo = mongo
        self.incidents = incidents
        directory = sandbox.directory
        self.root = directory / "app" / "opt" / "chatbot-platform"
        self.nginx_prefix = directory / "nginx"
        self.backups = directory / "backups"
        self.snapshots = self.backups / "pre-restore"
        self.app_pm2 = directory / "app" / "pm2"
        self.db_pm2 = directory / "db" / "pm2"
        self.web_url = sandbox.web_url
        self.db_port = int(self.web_url.rsplit(":", 1)[1]) + 2

    # --- what is served ------------------------------------------------------------------

    def served(self) -> Probe:
        """GET / through nginx as a user (no bypass)."""
        try:
            with urllib.request.urlopen(self.web_url + "/", timeout=5) as response:
                return Probe(response.status, response.headers.get("Retry-After"))
        except urllib.error.HTTPError as exc:
            return Probe(exc.code, exc.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError) as exc:
            return Probe(None, error=str(getattr(exc, "reason", exc)))

    def current(self) -> str:
        return os.readlink(self.root / "current")

    def app_version(self) -> str | None:
        return self.sandbox.health().get("version")

    def maintenance_files(self) -> list[str]:
        return sorted(p.name for p in (self.nginx_prefix / "conf.d").glob("chatbot-maintenance*"))

    # --- the data ------------------------------------------------------------------------

    def documents(self) -> Documents:
        found: Documents = {}
        for name in self.mongo.list_collection_names():
            if name.startswith("system."):
                continue
            raw = self.mongo.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
            found[name] = {repr(document_id(doc.raw)): _sha(doc.raw) for doc in raw.find({})}
        return found

    def stable_hashes(self) -> dict[str, str]:
        return {name: facts["content_sha256"] for name, facts in database_facts(self.mongo).items()
                if name in STABLE}

    def backup_manifest(self) -> dict:
        return load_manifest(str(self.backups / f"{BACKUP}.manifest.json"))

    def verified_archives(self, incident: str) -> list[Path]:
        """The backup and this incident's pre-restore snapshots whose archive matches its manifest."""
        manifests = [self.backups / f"{BACKUP}.manifest.json",
                     *sorted(self.snapshots.glob(f"*{incident}.manifest.json"))]
        return [Path(archive_path(str(m), load_manifest(str(m)))) for m in manifests
                if m.exists() and not check_backup(str(m))]

    def lost_documents(self, universe: Documents, incident: str) -> dict[str, int]:
        """How many documents of `universe` are neither in the live database nor in a verified backup or
        snapshot of the incident (by _id; with their content for the collections that never change)."""
        places = [self.documents(), *(archive_documents(a) for a in self.verified_archives(incident))]
        lost = {}
        for collection, wanted in universe.items():
            ids: set[str] = set()
            contents: set[str] = set()
            for place in places:
                ids.update(place.get(collection, {}))
                contents.update(place.get(collection, {}).values())
            missing = [i for i, sha in wanted.items()
                       if i not in ids or (collection in IMMUTABLE and sha not in contents)]
            if missing:
                lost[collection] = len(missing)
        return lost

    # --- services (as an operator, or a fault, starts and stops them) ------------------------

    def _nginx(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["nginx", "-p", str(self.nginx_prefix), "-c", str(self.nginx_prefix / "nginx.conf"),
                               *args], capture_output=True, text=True, timeout=30)

    def _pm2(self, home: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pm2", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PM2_HOME": str(home)})

    def stop_nginx(self) -> None:
        self._nginx("-s", "stop")
        self._wait(lambda: self.served().status is None, "nginx to stop")

    def start_nginx(self) -> None:
        if self.served().status is None:
            result = self._nginx()
            assert result.returncode == 0, result.stderr
        self._wait(lambda: self.served().status is not None, "nginx to answer")

    def stop_ferretdb(self) -> None:
        result = self._pm2(self.db_pm2, "stop", "ferretdb")
        assert result.returncode == 0, result.stdout + result.stderr
        self._wait(lambda: not self._db_answers(), "FerretDB to stop")

    def start_ferretdb(self) -> None:
        if not self._db_answers():
            result = self._pm2(self.db_pm2, "start", "ferretdb")
            assert result.returncode == 0, result.stdout + result.stderr
        self._wait(self._db_answers, "FerretDB to answer", timeout=60)

    def _db_answers(self) -> bool:
        try:
            self.mongo.command("ping")
            return True
        except Exception:  # any driver error: not answering
            return False

    def kill_app_pm2(self) -> None:
        """The app's pm2 daemon and its workers are gone (pm2 kill)."""
        self._pm2(self.app_pm2, "kill")
        self._wait(lambda: self.app_version() is None, "the app to stop answering")

    def start_app(self) -> None:
        """What an operator does: start the app from its ecosystem file (the release `current` points to)."""
        result = self._pm2(self.app_pm2, "start", str(self.root / "shared" / "ecosystem.config.js"), "--only", "app")
        assert result.returncode == 0, result.stdout + result.stderr
        self._wait(lambda: self.app_version() is not None, "the app to answer /health", timeout=60)

    @staticmethod
    def _wait(condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise FaultError(f"timed out waiting for {what}")


# --- pauses and runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """Where a run stops: the wrapper before a phase ("finish": before concluding), or ansible-playbook at a
    point of one phase's playbook (event play_start, task_start, handler_start or stats)."""

    phase: str
    playbook: str = ""
    event: str = ""
    task: str = ""

    @property
    def in_wrapper(self) -> bool:
        return not self.playbook

    def __str__(self) -> str:
        if self.in_wrapper:
            return f"wrapper before {self.phase}"
        what = {"play_start": "start", "stats": "end (stats)"}.get(self.event, f"{self.event} '{self.task}'")
        return f"{self.phase}: {self.playbook} {what}"


@dataclass
class Run:
    proc: subprocess.Popen
    log: Path
    pause: Pause | None
    marker: Path
    release: Path
    started: float = field(default_factory=time.monotonic)

    def tail(self, size: int = 2500) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-size:]

    def wait_paused(self, timeout: float = 420) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker.exists():
                return json.loads(self.marker.read_text())
            if self.proc.poll() is not None:
                raise FaultError(f"the run ended (exit {self.proc.returncode}) before reaching {self.pause}:\n"
                                 f"{self.tail()}")
            time.sleep(0.1)
        raise FaultError(f"the run never reached {self.pause}:\n{self.tail()}")

    @property
    def paused_at(self) -> dict:
        return json.loads(self.marker.read_text())

    def go_on(self) -> None:
        self.release.touch()

    def kill_wrapper(self) -> None:
        """SIGKILL of the rollbackctl process group: a lost session."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def module_pids(self, module: str) -> list[int]:
        """This run's processes of `module` (the shell that starts it and its Python), descendants of the paused
        ansible-playbook."""
        return [pid for pid in _descendants(self.paused_at["pid"]) if f"AnsiballZ_{module}.py" in _cmdline(pid)]

    def catch_module(self, module: str, timeout: float = 180) -> list[int]:
        """SIGSTOP for this run's `module` processes (descendants of its paused ansible-playbook) as soon as they
        appear; their pids. Called right after go_on: the module is caught while Python is still starting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            caught = self.module_pids(module)
            if caught:
                _signal_all(caught, signal.SIGSTOP)
                # the shell may have forked the module's Python between the scan and its SIGSTOP: a stopped shell
                # forks no more, so a second scan finds every process of the module
                while more := [pid for pid in self.module_pids(module) if pid not in caught]:
                    _signal_all(more, signal.SIGSTOP)
                    caught += more
                return caught
            if self.proc.poll() is not None:
                break
            time.sleep(0.001)
        raise FaultError(f"no {module} process appeared under ansible-playbook {self.paused_at['pid']}:\n"
                         f"{self.tail()}")

    def kill_playbook(self) -> None:
        """SIGKILL of ansible-playbook's process group (it, its workers and their modules); the wrapper lives."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.paused_at["pgid"], signal.SIGKILL)

    def wait(self, timeout: float = 420) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FaultError(f"the run did not end within {timeout}s:\n{self.tail()}") from None

    def stop(self) -> None:
        """Whatever is left of this run (the wrapper's group and a paused playbook's group) is killed."""
        groups = [self.proc.pid]
        if self.marker.exists() and self.pause and not self.pause.in_wrapper:
            groups.append(self.paused_at["pgid"])
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found.extend(sorted(frontier))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _end_frozen(pids: list[int], resume: bool = False) -> None:
    """SIGCONT (resume) or SIGKILL for frozen module processes that are still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT if resume else signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start(project: Path, args: list[str], pause: Pause | None, incident: str, workdir: Path, label: str) -> Run:
    """rollbackctl (through launch.py) with `pause` armed; its output in workdir/<label>.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker, release = workdir / f"{label}.paused", workdir / f"{label}.release"
    for path in (marker, release):
        path.unlink(missing_ok=True)
    env = {**os.environ, "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS)}
    env.pop("FAULT_PAUSE", None)
    env.pop("FAULT_WRAPPER_PAUSE", None)
    if pause and pause.in_wrapper:
        env["FAULT_WRAPPER_PAUSE"] = json.dumps({"before": pause.phase, "marker": str(marker),
                                                 "release": str(release)})
    elif pause:
        env["FAULT_PAUSE"] = json.dumps({"incident": incident, "phase": pause.phase, "playbook": pause.playbook,
                                         "event": pause.event, "task": pause.task, "marker": str(marker),
                                         "release": str(release)})
    log = workdir / f"{label}.log"
    with log.open("w") as output:
        proc = subprocess.Popen([sys.executable, str(LAUNCH), *args], stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=project)
    return Run(proc, log, pause, marker, release)


def read_record(incidents: Path, incident: str) -> dict:
    return json.loads((incidents / incident / "incident.json").read_text())


def phase_status(record: dict) -> dict[str, str]:
    return {p["name"]: p["status"] for p in record["phases"]}


def first_open_phase(record: dict) -> dict | None:
    return next((p for p in record["phases"] if p["status"] not in ("ok", "skipped")), None)


# --- faults ------------------------------------------------------------------------------------

KINDS = ("kill-wrapper", "kill-playbook", "stop-nginx", "stop-ferretdb", "stop-pm2", "disk-full")
# The playbooks each phase runs, in order (rollbackctl.orchestrator.steps_for).
PLAYBOOKS = {
    "preflight": ("preflight.yml",), "announce": ("notify.yml",), "maintenance_on": ("maintenance.yml",),
    "app_rollback": ("app_rollback.yml",), "verify_app": ("verify.yml",), "db_restore": ("db_restore.yml",),
    "verify_db": ("verify.yml",), "maintenance_off": ("verify.yml", "maintenance.yml"), "post_verify": ("verify.yml",),
    "notify_done": ("notify.yml",), "collect_logs": ("collect_logs.yml",),
}
RESTORE_TASK = "Restore the backup (drop, restore, drop extra collections, compare)"


@dataclass(frozen=True)
class Fault:
    id: str
    kind: str
    pause: Pause
    what: str
    mid_restore: bool = False  # go on from the pause and strike once the restore has dropped a collection
    cause: tuple[str, ...] = ()  # the failed phase's error names one of these

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


# One row per fault for the summary at the end of the session (conftest.pytest_terminal_summary).
ROWS: list[dict] = []


@dataclass
class Chain:
    """One incident's rollback, from a fresh bad release, struck by one fault after another.

    Each fault test finds the run paused at its point (the previous test started it), strikes, checks the
    safe state, the record and the data, does what an operator would (restart what was stopped, free the disk),
    then resumes with the next fault's point armed: reaching it proves the resume got past this fault. The
    last fault's resume runs to the end and the platform must be back on v0.9.0 with the backup's content.
    """

    name: str
    faults: list[Fault]
    platform: Platform
    project: Path
    workdir: Path
    incident: str = ""
    run: Run | None = None
    universe: Documents = field(default_factory=dict)
    bad_stable: dict[str, str] = field(default_factory=dict)
    tmpfs: Path | None = None
    struck: str = ""  # the phase the last fault stopped

    def __post_init__(self):
        self.incident = self.incident or f"INC-FAULTS-{self.name.upper()}"

    # --- runs ------------------------------------------------------------------------------

    def _args(self) -> list[str]:
        if (self.platform.incidents / self.incident / "incident.json").exists():
            return ["resume", self.incident]
        return ["run", "standard", "-i", "inventories/local", "--to", TARGET, "--reason", "fault injection",
                "--incident-id", self.incident, "--break-lock", *AUTHORITY]

    def launch(self, pause: Pause | None, label: str) -> Run:
        self.run = start(self.project, self._args(), pause, self.incident, self.workdir, label)
        return self.run

    def reach(self, fault: Fault) -> Run:
        """The run paused at the fault's point (left there by the previous test, or started now)."""
        run = self.run
        if run and run.pause == fault.pause and run.marker.exists() and run.proc.poll() is None:
            return run
        if run:
            run.stop()
        run = self.launch(fault.pause, fault.id)
        run.wait_paused()
        return run

    def stop(self) -> None:
        if self.run:
            self.run.stop()
            self.run = None

    def record(self) -> dict:
        return read_record(self.platform.incidents, self.incident)

    # --- the platform's state ------------------------------------------------------------------

    def state(self) -> str:
        """bad (the bad release with its data, as before the rollback), good (rolled back: v0.9.0 with the
        backup's data) or mixed (anything else, e.g. code and data of different releases, the app stopped)."""
        p = self.platform
        try:
            current, version = p.current(), _direct_version(p)
            stable, names = p.stable_hashes(), set(p.mongo.list_collection_names())
        except Exception as exc:  # the database does not answer: nobody can say the data is consistent
            return f"mixed (unknown: {type(exc).__name__})"
        # A stopped app runs no code: code and data may still agree.
        if current == f"releases/{BAD}" and version in (None, BAD[1:]) and stable == self.bad_stable \
                and "message_reactions" in names:
            return "bad"
        manifest = p.backup_manifest()
        expected = {n: c["content_sha256"] for n, c in manifest["collections"].items() if n in STABLE}
        if current == f"releases/{TARGET}" and version in (None, TARGET[1:]) and stable == expected \
                and "message_reactions" not in names:
            return "good"
        return f"mixed (release {current}, app {version}, data {'= backup' if stable == expected else 'differs'})"

    def check_safe(self, nginx_may_be_down: bool = False) -> str:
        """Maintenance is served whenever code or data may be inconsistent; what is served, as text."""
        state, probe = self.state(), self.platform.served()
        if state.startswith("mixed"):
            if probe.status is None:
                assert nginx_may_be_down, f"platform {state}: {probe}"
            else:
                assert probe.maintenance, f"unsafe: platform {state} but users get {probe}"
        return f"{state.split(' ')[0]}: {probe}"

    def check_no_document_lost(self) -> None:
        lost = self.platform.lost_documents(self.universe, self.incident)
        assert not lost, f"documents in neither the database nor a verified backup/snapshot: {lost}"


def _direct_version(platform: Platform) -> str | None:
    """The version the app itself reports (its own port: nginx may be stopped or in maintenance)."""
    url = f"http://127.0.0.1:{platform.db_port - 1}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response).get("version")
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return json.loads(exc.read()).get("version")
        return None
    except (urllib.error.URLError, OSError, ValueError):
        return None


# --- one fault, end to end ---------------------------------------------------------------------


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _restore_complete(platform: Platform) -> bool:
    """The database holds the backup's stable collections and its collections only."""
    manifest = platform.backup_manifest()
    return platform.stable_hashes() == {n: c["content_sha256"] for n, c in manifest["collections"].items()
                                        if n in STABLE} and \
        set(database_facts(platform.mongo)) == set(manifest["collections"])


def _freeze_mid_restore(run: Run, platform: Platform, before: int, timeout: float = 180) -> tuple[list[int], int]:
    """The restore module frozen (SIGSTOP) just after it has dropped or refilled `messages` (its count differs from
    `before`), with the rest of the restore still to do: the frozen pids and that count.

    The module is caught as it starts and let run in slices of 25 ms, the count read between slices, so the strike
    lands mid-restore however fast the restore is and however loaded the machine (a watcher that polls a
    free-running restore loses that race: the restore can finish between the drop and the freeze). A slice is far
    shorter than what follows the drop (refilling the collection, the others, the comparison), and long beside the
    count (FerretDB counts by a scan), so the module is not slowed much."""
    frozen = run.catch_module("mongodb_restore")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            count = platform.mongo.messages.count_documents({})
            if count != before:
                break
        _signal_all(frozen, signal.SIGCONT)
        time.sleep(0.025)
        _signal_all(frozen, signal.SIGSTOP)
        frozen += (more := [pid for pid in run.module_pids("mongodb_restore") if pid not in frozen])
        _signal_all(more, signal.SIGSTOP)  # never one that escaped the catch
    else:
        _signal_all(frozen, signal.SIGKILL)
        raise FaultError("the restore never touched the messages collection")
    if _restore_complete(platform):
        _signal_all(frozen, signal.SIGKILL)
        raise FaultError("the restore was complete within one slice: no mid-restore state to strike")
    return frozen, count


def _fill(directory: Path) -> Path:
    """A full 2 MiB tmpfs mounted on `directory`; the filler file (remove it to free the space)."""
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(directory)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"cannot mount a tmpfs on {directory}: {result.stderr}"
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    with contextlib.suppress(OSError), filler.open("ab") as handle:  # the last partial pages too
        while True:
            handle.write(b"\0" * 512)
            handle.flush()
    return filler


def unmount(directory: Path) -> None:
    if os.path.ismount(directory):
        result = subprocess.run(["umount", str(directory)], capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, text=True)


def strike(chain: Chain, fault: Fault, run: Run, row: dict) -> int | None:
    """Inject the fault at the paused run; the wrapper's exit code (None: killed)."""
    p = chain.platform
    messages = len(chain.universe.get("messages", {}))
    if fault.kind == "kill-wrapper":
        frozen: list[int] = []
        if fault.mid_restore:
            run.go_on()
            began = time.monotonic()
            frozen, count = _freeze_mid_restore(run, p, messages)  # the kill lands mid-restore, not after it
            row["observed"] = (f"messages {messages} -> {count} ({len(frozen)} processes frozen "
                               f"{time.monotonic() - began:.1f} s after go-on)")
        run.kill_wrapper()
        if not run.pause.in_wrapper:  # the dead wrapper's ansible-playbook must not run on
            pid = run.paused_at["pid"]
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            orphan = alive(pid)
            if orphan:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.paused_at["pgid"], signal.SIGKILL)
            assert not orphan, (f"ansible-playbook (pid {pid}) of the killed wrapper was still running 10 s later: "
                                "a resume would race it")
        _end_frozen(frozen)  # the guard killed them with their worker; nothing frozen may outlive the strike
        if fault.mid_restore:
            assert not _restore_complete(p), "the restore completed although its module was frozen and killed"
        return None
    if fault.kind == "kill-playbook":
        run.kill_playbook()
        return run.wait()
    if fault.kind == "stop-nginx":
        p.stop_nginx()
    elif fault.kind == "stop-pm2":
        p.kill_app_pm2()
    elif fault.kind == "stop-ferretdb" and not fault.mid_restore:
        p.stop_ferretdb()
    elif fault.kind == "disk-full":
        chain.tmpfs = p.snapshots
        _fill(p.snapshots)
    run.go_on()
    if fault.kind == "stop-ferretdb" and fault.mid_restore:
        began = time.monotonic()
        frozen, count = _freeze_mid_restore(run, p, messages)  # FerretDB goes away mid-restore, not after it
        row["observed"] = (f"messages {messages} -> {count} ({len(frozen)} processes frozen "
                           f"{time.monotonic() - began:.1f} s after go-on)")
        try:
            p.stop_ferretdb()
        finally:
            _end_frozen(frozen, resume=True)
    return run.wait()


def check_record(chain: Chain, fault: Fault, code: int | None, row: dict) -> None:
    """The record names where the run stopped and why."""
    record = chain.record()
    status = phase_status(record)
    phase = record_phase(record, fault.pause.phase)
    running = [name for name, s in status.items() if s == "running"]
    if fault.kind == "kill-wrapper":
        expected = "pending" if fault.pause.in_wrapper else "running"
        if fault.pause.phase == "finish":
            assert all(s in ("ok", "skipped") for s in status.values()), status
            expected = "all phases done"
        else:
            assert phase["status"] == expected, (fault.pause.phase, status)
            assert running == ([] if fault.pause.in_wrapper else [fault.pause.phase]), status
        assert record["outcome"]["status"] == "in_progress", record["outcome"]
        row["record"] = f"{fault.pause.phase}: {expected}"
        chain.struck = fault.pause.phase
        return
    assert code == 3, f"exit {code}, expected 3 (a phase failed):\n{chain.run.tail()}"
    failed = first_open_phase(record)
    assert failed and failed["status"] == "failed", status
    if fault.kind == "kill-playbook":
        assert failed["name"] == fault.pause.phase, (fault.pause.phase, status)
    assert failed["error"], failed
    if fault.cause:
        assert any(c.lower() in failed["error"].lower() for c in fault.cause), \
            f"the error does not say why ({' / '.join(fault.cause)}): {failed['error']}"
    outcome = record["outcome"]
    assert outcome["status"] == "failed" and failed["name"] in outcome["summary"], outcome
    assert f"rollbackctl resume {chain.incident}" in outcome["next_step"], outcome
    row["record"] = f"{failed['name']}: failed - {failed['error'][:90]}"
    chain.struck = failed["name"]


def record_phase(record: dict, name: str) -> dict:
    return next((p for p in record["phases"] if p["name"] == name), {"name": name, "status": "?"})


def recover(chain: Chain, fault: Fault) -> str:
    """What an operator does before resuming (idempotent; nothing for a kill)."""
    p = chain.platform
    if fault.kind == "stop-nginx":
        p.start_nginx()
        return "started nginx"
    if fault.kind == "stop-ferretdb":
        p.start_ferretdb()
        return "started FerretDB"
    if fault.kind == "stop-pm2":
        if _direct_version(p) is None:
            p.start_app()
        return "started the app with pm2"
    if fault.kind == "disk-full":
        (p.snapshots / "filler").unlink(missing_ok=True)
        return "freed the backup disk"
    return "-"


def check_recovered(chain: Chain, fault: Fault, following: Fault | None) -> str:
    """After the resume reached the next point (or ended): it got past this fault."""
    record = chain.record()
    name = chain.struck  # the phase the fault stopped (an outage may stop a later phase than where it began)
    if name == "finish":
        return "concluded"
    phase = record_phase(record, name)
    later = following is None or following.pause.phase != name
    if later:
        assert phase["status"] in ("ok", "skipped"), f"{name} not done after the resume: {phase['status']}"
    else:  # struck again in the same phase: the resume started it (again)
        before = 0 if fault.kind == "kill-wrapper" and fault.pause.in_wrapper else 1
        assert phase["status"] == "running" and len(phase["attempts"]) >= before + 1, phase
    attempts = [a["status"] for a in phase["attempts"]]
    if fault.kind == "kill-wrapper" and not fault.pause.in_wrapper:
        died = [a for a in phase["attempts"] if a["status"] == "interrupted"]
        assert died and "died" in died[-1]["error"], attempts
    elif fault.kind == "kill-wrapper":
        assert f"from phase {name}" in (record["follow_up"]["notes"] or ""), record["follow_up"]
    else:
        assert "failed" in attempts, attempts
    if name == "db_restore" and later:  # the record names the snapshot that keeps the writes since the deployment
        snapshot = record["pre_restore_snapshot"]
        assert snapshot and Path(snapshot["manifest"]).exists(), f"pre-restore snapshot not recorded: {snapshot}"
        assert not check_backup(snapshot["manifest"]), snapshot
    return f"{name}: {' -> '.join(attempts)}"


def check_completed(chain: Chain, code: int) -> None:
    """The last resume ended the rollback: v0.9.0 with the backup's content, maintenance off, record complete."""
    p = chain.platform
    assert code == 0, f"the final resume exited {code}:\n{chain.run.tail()}"
    record = chain.record()
    assert record["outcome"]["status"] == "succeeded", record["outcome"]
    assert all(s in ("ok", "skipped") for s in phase_status(record).values()), phase_status(record)
    assert (p.current(), p.app_version()) == (f"releases/{TARGET}", TARGET[1:])
    assert p.maintenance_files() == [] and not p.served().maintenance
    manifest = p.backup_manifest()
    assert p.stable_hashes() == {n: c["content_sha256"] for n, c in manifest["collections"].items() if n in STABLE}
    assert set(database_facts(p.mongo)) == set(manifest["collections"]), "the bad release's collections are gone"
    assert record["backup"]["sha256"] == manifest["sha256"]
    snapshot = record["pre_restore_snapshot"]
    assert snapshot and not check_backup(snapshot["manifest"]), snapshot
    chain.check_no_document_lost()


def exercise(chain: Chain, fault: Fault) -> None:
    """The whole life of one fault; its row in the summary says what happened."""
    row = {"chain": chain.name, "fault": fault.id, "kind": fault.kind, "point": str(fault.pause), "record": "",
           "served": "", "recovery": "", "result": "FAIL"}
    ROWS.append(row)
    started = time.monotonic()
    try:
        run = chain.reach(fault)
        code = strike(chain, fault, run, row)
        row["exit"] = "killed" if code is None else str(code)
        row["served"] = chain.check_safe(nginx_may_be_down=fault.kind == "stop-nginx")
        check_record(chain, fault, code, row)
        action = recover(chain, fault)
        chain.check_safe()
        chain.check_no_document_lost()
        index = chain.faults.index(fault)
        following = chain.faults[index + 1] if index + 1 < len(chain.faults) else None
        if following:
            chain.launch(following.pause, following.id).wait_paused()
        else:
            check_completed(chain, chain.launch(None, "final").wait())
        row["recovery"] = f"{action}; resume: {check_recovered(chain, fault, following)}" + \
            ("" if following else "; completed: v0.9.0, backup content")
        row["result"] = "pass"
    except BaseException as exc:
        row["result"] = f"FAIL: {str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__}"
        recover(chain, fault)
        raise
    finally:
        row["seconds"] = round(time.monotonic() - started)
