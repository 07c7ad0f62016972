"""The fixture's code-only bad release v0.9.2, as make-repo.sh tags it.

v0.9.2 has v0.9.0's schema (no migration) and breaks messaging only: sending and listing messages answer 500
with the error logged, while login, the conversation list and creating a conversation work. Checked on the
tagged tree itself, through the app's own request handler on its in-memory test database (test/fake-db.js);
v0.9.0 on the same requests is the control. v0.9.0 and v1.0.0 are the commits they were before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "chatbot-platform"

PROBE_JS = r"""
'use strict';
const http = require('http');
const auth = require('./src/auth');
const { createRequestHandler } = require('./src/routes');
const { FakeDb } = require('./test/fake-db');
const { ObjectId } = require('mongodb');

(async () => {
  const db = new FakeDb({ scans: { users: ['username'] } });
  const user = { _id: new ObjectId(), username: 'zoe', display_name: 'Zoë',
                 password: auth.hashPasswordSync('pw-zoe', '11'.repeat(16)) };
  await db.collection('users').insertOne(user);
  const ctx = { database: { db: async () => db }, metrics: { observe() {} } };
  const server = http.createServer(createRequestHandler(ctx));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const call = async (method, path, token, body) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  const out = {};
  const login = await call('POST', '/api/login', null, { username: 'zoe', password: 'pw-zoe' });
  out.login = login.status;
  const token = login.body.token;
  const created = await call('POST', '/api/conversations', token, { title: 'probe' });
  out.create = created.status;
  const id = created.body.conversation.id;
  out.conversations = (await call('GET', '/api/conversations', token)).status;
  const sent = await call('POST', `/api/conversations/${id}/messages`, token, { text: 'hello' });
  out.send = sent.status;
  out.send_error = sent.body && sent.body.error;
  out.stored = (await db.collection('messages').find({}).toArray()).length;
  out.list = (await call('GET', `/api/conversations/${id}/messages`, token)).status;
  out.logout = (await call('POST', '/api/logout', token)).status;
  server.closeAllConnections();
  server.close();
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
})().catch((err) => { console.error(err); process.exit(1); });
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("fixture-repo") / "chatbot-platform"
    subprocess.run([str(FIXTURE / "make-repo.sh"), str(dest)], check=True, capture_output=True, timeout=120)
    return dest


@pytest.fixture(scope="module")
def node_modules(repo, tmp_path_factory) -> Path:
    """The fixture's one dependency, installed once from the lock file (npm's cache)."""
    if not shutil.which("npm"):
        pytest.fail("node and npm must be installed: run scripts/install-deps.sh")
    work = tmp_path_factory.mktemp("deps")
    for name in ("package.json", "package-lock.json"):
        (work / name).write_text(_git(repo, "show", f"v0.9.0:{name}") + "\n")
    subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                   check=True, capture_output=True, timeout=300)
    return work / "node_modules"


def _probe(repo: Path, node_modules: Path, version: str, tmp_path: Path) -> tuple[dict, str]:
    tree = tmp_path / version
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", version], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "node_modules").symlink_to(node_modules)
    (tree / "probe.js").write_text(PROBE_JS)
    proc = subprocess.run(["node", "probe.js"], cwd=tree, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), proc.stderr


def test_make_repo_tags_v092_beside_the_unchanged_releases(repo, tmp_path):
    # Deterministic: a second build gives every tag the same commit (the releases' SHAs depend only on the tree).
    again = tmp_path / "again"
    subprocess.run([str(FIXTURE / "make-repo.sh"), str(again)], check=True, capture_output=True, timeout=120)
    for tag in ("v0.9.0", "v1.0.0", "v0.9.2"):
        assert _git(repo, "rev-parse", f"{tag}^{{commit}}") == _git(again, "rev-parse", f"{tag}^{{commit}}")
    v090 = _git(repo, "rev-parse", "v0.9.0^{commit}")
    assert _git(repo, "rev-parse", "main") == _git(repo, "rev-parse", "v1.0.0^{commit}")
    assert _git(repo, "rev-parse", "v1.0.0^{commit}^") == v090  # v1.0.0 still follows v0.9.0 directly
    assert _git(repo, "rev-parse", "v0.9.2^{commit}^") == v090  # a child of v0.9.0, on no branch
    assert _git(repo, "status", "--porcelain") == ""
    changed = set(_git(repo, "diff", "--name-only", "v0.9.0", "v0.9.2").splitlines())
    assert changed == {"CHANGELOG.md", "package.json", "package-lock.json", "src/messages.js"}  # no migration
    package = json.loads(_git(repo, "show", "v0.9.2:package.json"))
    assert package["version"] == "0.9.2" and package["chatbot"]["schemaVersion"] == 1
    assert json.loads(_git(repo, "show", "v0.9.2:package-lock.json"))["version"] == "0.9.2"


def test_make_repo_is_deterministic(repo, tmp_path):
    again = tmp_path / "again"
    subprocess.run([str(FIXTURE / "make-repo.sh"), "--bare", str(again)], check=True, capture_output=True,
                   timeout=120)
    for tag in ("v0.9.0", "v1.0.0", "v0.9.2"):
        assert _git(again, "rev-parse", tag) == _git(repo, "rev-parse", tag)


def test_v092_breaks_messaging_only_and_logs_the_error(repo, node_modules, tmp_path):
    good, _ = _probe(repo, node_modules, "v0.9.0", tmp_path)
    assert (good["send"], good["list"]) == (201, 200), good  # the control: the same requests work on v0.9.0
    bad, stderr = _probe(repo, node_modules, "v0.9.2", tmp_path)
    assert (bad["login"], bad["create"], bad["conversations"], bad["logout"]) == (200, 201, 200, 204), bad
    assert (bad["send"], bad["send_error"], bad["list"]) == (500, "internal", 500), bad
    assert bad["stored"] == 2  # as v1.0.0: both messages are stored before the answer fails
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    errors = [entry for entry in logged if entry.get("msg", entry.get("message", "")) == "unhandled error in request"]
    assert len(errors) == 2 and "display_name" in json.dumps(errors), stderr[-2000:]
