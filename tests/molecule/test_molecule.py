"""The molecule rehearsal in podman containers: check -> converge -> idempotence -> verify."""

from __future__ import annotations

import os
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
    proc = subprocess.run(["molecule", "test", "-s", "default"], cwd=project, env=env, capture_output=True,
                          text=True, check=False, timeout=1800)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, tail
    assert "idempotence: Executed: Successful" in proc.stdout + proc.stderr, tail
    assert "verify: Executed: Successful" in proc.stdout + proc.stderr, tail
