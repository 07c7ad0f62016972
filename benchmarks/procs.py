"""Run one command as a measure: wall time, CPU time of its process tree, and the processes it started.

CPU time is resource.getrusage(RUSAGE_CHILDREN) before and after (the command and every descendant it waited
for). Process starts come from the kernel's process events (the proc connector, netlink): every fork whose parent
is in the command's tree adds the child to the tree, every exec in the tree counts, so even processes that live
a millisecond are counted. Needs root; without it the counts are None (and say so), the times are still measured.
Processes started by daemons the command only talks to (pm2's workers, nginx's) are not in its tree.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

_NETLINK_CONNECTOR, _CN_IDX_PROC, _CN_VAL_PROC = 11, 1, 1
_PROC_EVENT_FORK, _PROC_EVENT_EXEC = 0x1, 0x2
_MCAST_LISTEN = 1
_HEADER = 36  # nlmsghdr (16) + cn_msg (20); then proc_event: what, cpu, timestamp_ns, data
_DATA = _HEADER + 16


@dataclass
class Measured:
    command: list[str]
    rc: int
    wall: float
    cpu: float  # user + system seconds of the command's process tree
    forks: int | None = None  # processes started in the tree (None: not counted)
    execs: int | None = None
    programs: Counter = field(default_factory=Counter)  # exec'd program names (/proc/<pid>/comm at exec time)
    lost_events: bool = False
    output: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0


class ProcessEvents:
    """Count forks and execs in the process tree of `root` (from the moment start() returns)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.tree: set[int] = set()
        self.forks = 0
        self.execs = 0
        self.programs: Counter = Counter()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> bool:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_CONNECTOR)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.bind((0, _CN_IDX_PROC))
            op = struct.pack("I", _MCAST_LISTEN)
            cn = struct.pack("IIIIHH", _CN_IDX_PROC, _CN_VAL_PROC, 0, 0, len(op), 0) + op
            sock.send(struct.pack("IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)  # NLMSG_DONE carries the request
            sock.settimeout(0.2)
        except OSError:
            return False
        self.sock = sock
        self._thread.start()
        return True

    def watch(self, pid: int) -> None:
        self.tree.add(pid)

    def _read(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # ENOBUFS: the kernel dropped events
                self.lost = True
                continue
            if len(data) < _DATA + 8:
                continue
            what = struct.unpack_from("I", data, _HEADER)[0]
            if what == _PROC_EVENT_FORK:
                _ppid, parent_tgid, child_pid, child_tgid = struct.unpack_from("IIII", data, _DATA)
                if parent_tgid in self.tree and child_pid == child_tgid:  # a process, not a thread
                    self.tree.add(child_tgid)
                    self.forks += 1
            elif what == _PROC_EVENT_EXEC:
                _pid, tgid = struct.unpack_from("II", data, _DATA)
                if tgid in self.tree:
                    self.execs += 1
                    try:
                        with open(f"/proc/{tgid}/comm") as handle:
                            self.programs[handle.read().strip()] += 1
                    except OSError:
                        self.programs["?"] += 1

    def stop(self) -> None:
        time.sleep(0.3)  # the last events are still on their way
        self._stop.set()
        if self.sock is not None:
            self._thread.join(2)
            self.sock.close()


def run_measured(command: list[str], *, env: dict[str, str], cwd: str, timeout: float = 1800,
                 count_processes: bool = True) -> Measured:
    """Run `command` to its end; wall, CPU of its tree, process starts (see the module's docstring)."""
    events = ProcessEvents()
    counting = count_processes and events.start()
    if counting:
        events.watch(os.getpid())  # the command is forked from here; our own threads never fork otherwise
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if counting:
        events.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(command, proc.returncode, wall, cpu,
                    forks=events.forks if counting else None, execs=events.execs if counting else None,
                    programs=events.programs, lost_events=events.lost,
                    output=(proc.stdout[-4000:] + proc.stderr[-4000:]))
