"""The molecule rehearsal in podman containers: check -> converge -> idempotence -> verify."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.molecule

IMAGE = "localhost/chatbot-rehearsal:bookworm"


def test_molecule_default_scenario(project):
    if not shutil.which("podman") or not shutil.which("molecule"):
        pytest.fail("podman and molecule must be installed: run scripts/install-deps.sh")
    images = subprocess.run(["podman", "image", "exists", IMAGE], check=False)
    assert images.returncode == 0, f"{IMAGE} is missing: run scripts/build-image.sh"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ROLLBACK_SANDBOX", "ANSIBLE_"))}
    env.update(NO_COLOR="1", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["molecule", "test", "-s", "default"], cwd=project, env=env, capture_output=True,
                          text=True, check=False, timeout=1800)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    tail = "\n".join(output.splitlines()[-60:])
    assert proc.returncode == 0, tail
    for action in ("check", "converge", "idempotence", "verify"):
        assert f"{action}: Executed: Successful" in output, tail
