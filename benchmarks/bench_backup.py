"""Backup and restore of the platform database: the toolkit's code side by side with plain pymongo.

    python benchmarks/bench_backup.py [--sizes 5000,25000,100000] [--repeats 3] [--uri URI] [--code PATH ...]

Starts a FerretDB of its own (tests/ferretdb_server.py, the one the integration tests use; port
$ROLLBACK_TEST_PORT_BASE + 70 when that is set, else a free one) unless --uri names a database, seeds it with
N chatbot messages of realistic size (plus their users, conversations and sessions), and measures in one run,
each repeat interleaving the contestants:

- backup:  the toolkit's mongo_backup.dump() (pymongo engine: archive + manifest) vs plain pymongo
  (every collection's raw documents into one gzip file, the same compression level);
- restore: what the mongodb_restore module does with the toolkit's functions (check the backup, compare the
  target, restore, compare again) vs a plain pymongo copy from the plain dump (drop + insert_many + indexes).

--code PATH (repeatable) selects the checkout whose plugins/module_utils are measured (default: this one), so
that two versions are measured in one sitting: each runs in its own child process, on the same database.
Prints a Markdown table (min / median / max seconds, ratio toolkit / plain of the medians) and the growth per
size (seconds per 1,000 messages: flat means linear).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "chatbot-platform"
RESTORE_DATABASE = "chatbot-platform-bench-restore"
PLAIN_DATABASE = "chatbot-platform-bench-plain"
GZIP_LEVEL = 6  # what mongo_archive writes with
WORDS = ("order parcel delivery refund invoice account password login reset shipping tracking number "  # noqa: SIM905
         "please thanks hello question problem broken update status price discount coupon subscription "
         "cancel support agent message reply today tomorrow week address change payment card bank "
         "transfer receipt product size colour return exchange warranty repair store open hours").split()


# ---------------------------------------------------------------------------------------------
# Data


def seed(db, messages: int, rng: random.Random) -> dict[str, int]:
    """N messages (200-900 bytes of text each) in conversations of ~10, users of ~5 conversations."""
    import datetime

    from bson import ObjectId

    for name in db.list_collection_names():
        db.drop_collection(name)
    start = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.timezone.utc)  # noqa: UP017
    n_conv = max(1, messages // 10)
    n_users = max(1, n_conv // 5)
    users = [{"_id": ObjectId(), "username": f"user{i:06d}", "display_name": f"User {i}",
              "password": {"algo": "scrypt", "salt": rng.randbytes(16).hex(), "hash": rng.randbytes(64).hex()},
              "created_at": start + datetime.timedelta(minutes=i), "roles": ["user"]} for i in range(n_users)]
    db.users.insert_many(users)
    db.users.create_index("username", unique=True, name="username_unique")
    conversations = [{"_id": ObjectId(), "user_id": users[i % n_users]["_id"],
                      "title": " ".join(rng.choices(WORDS, k=5)), "tags": rng.sample(WORDS, 2),
                      "created_at": start + datetime.timedelta(minutes=i),
                      "updated_at": start + datetime.timedelta(minutes=i, seconds=30)} for i in range(n_conv)]
    db.conversations.insert_many(conversations)
    db.conversations.create_index([("user_id", 1), ("updated_at", -1)], name="user_updated")
    batch = []
    for i in range(messages):
        conv = conversations[i % n_conv]
        bot = i % 2 == 1
        at = start + datetime.timedelta(seconds=i * 7)
        batch.append({"_id": ObjectId(), "conversation_id": conv["_id"], "kind": "bot" if bot else "user",
                      "author_id": None if bot else conv["user_id"],
                      "text": " ".join(rng.choices(WORDS, k=rng.randint(30, 130))),
                      "at": at, "meta": {"client": "web", "lang": "en", "rule": "faq" if bot else None}})
        if len(batch) == 2000:
            db.messages.insert_many(batch)
            batch = []
    if batch:
        db.messages.insert_many(batch)
    db.messages.create_index([("conversation_id", 1), ("at", 1)], name="conversation_at")
    db.sessions.insert_many([{"token_hash": rng.randbytes(32).hex(), "user_id": users[i % n_users]["_id"],
                              "created_at": start, "expires_at": start + datetime.timedelta(hours=12)}
                             for i in range(max(1, n_users // 2))])
    db.sessions.create_index("token_hash", unique=True, name="token_hash_unique")
    return {name: db.get_collection(name).estimated_document_count() for name in sorted(db.list_collection_names())}


# ---------------------------------------------------------------------------------------------
# Contestants


def plain_dump(db, path: str) -> None:
    """Plain pymongo: each collection's raw BSON documents (and its indexes) into one gzip file."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    raw_options = CodecOptions(document_class=RawBSONDocument)
    with gzip.open(path, "wb", compresslevel=GZIP_LEVEL) as out:
        for name in sorted(db.list_collection_names()):
            indexes = json.dumps([{"key": list(ix["key"].items()), "name": ix["name"],
                                   **({"unique": True} if ix.get("unique") else {})}
                                  for ix in db.get_collection(name).list_indexes() if ix["name"] != "_id_"]).encode()
            out.write(len(name).to_bytes(4, "little") + name.encode() + len(indexes).to_bytes(4, "little") + indexes)
            for doc in db.get_collection(name, codec_options=raw_options).find({}, batch_size=1000):
                out.write(doc.raw)
            out.write(b"\xff\xff\xff\xff")


def plain_restore(db, path: str) -> None:
    """Plain pymongo: drop + insert_many (1,000 raw documents a batch) + create the indexes, from plain_dump()."""
    from bson.raw_bson import RawBSONDocument

    with gzip.open(path, "rb") as data:
        while True:
            size = data.read(4)
            if not size:
                break
            name = data.read(int.from_bytes(size, "little")).decode()
            indexes = json.loads(data.read(int.from_bytes(data.read(4), "little")))
            db.drop_collection(name)
            target = db.get_collection(name)
            batch = []
            while True:
                prefix = data.read(4)
                if prefix == b"\xff\xff\xff\xff":
                    break
                batch.append(RawBSONDocument(prefix + data.read(int.from_bytes(prefix, "little") - 4)))
                if len(batch) == 1000:
                    target.insert_many(batch)
                    batch = []
            if batch:
                target.insert_many(batch)
            if name not in db.list_collection_names(filter={"name": name}):
                db.create_collection(name)
            for index in indexes:
                target.create_index(index["key"], name=index["name"], unique=index.get("unique", False))


def load_toolkit(code: Path):
    """The module_utils of a checkout (imported as the modules import them)."""
    sys.path.insert(0, str(code / ".collections"))
    prefix = "ansible_collections.chatbot.rollback.plugins.module_utils."
    backup = importlib.import_module(prefix + "mongo_backup")
    snapshot = importlib.import_module(prefix + "mongo_snapshot")
    archive = importlib.import_module(prefix + "mongo_archive")
    if not Path(backup.__file__).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"imported {backup.__file__}, not the code under {code}")
    return backup, snapshot, archive


def toolkit_restore(backup, snapshot, uri: str, manifest: str, client) -> None:
    """What mongodb_restore does: check the backup, compare the target, restore what differs, compare again."""
    import inspect

    fast = "content" in inspect.signature(backup.check).parameters
    problems = backup.check(manifest, content=False) if fast else backup.check(manifest)
    if problems:
        raise SystemExit(f"backup not intact: {problems}")
    loaded = backup.load_manifest(manifest)
    db = client.get_database(RESTORE_DATABASE)
    before = snapshot.database_facts(db)
    names = snapshot.differing_collections(loaded["collections"], before)
    done = backup.restore(uri, backup.archive_path(manifest, loaded), RESTORE_DATABASE, True, "pymongo",
                          client=client, collections=names)
    if hasattr(snapshot, "restored_facts"):  # the module's default verification (verify_method=stream)
        untouched = {name: fact for name, fact in before.items() if name not in done["restored"]}
        after = snapshot.restored_facts(db, done["streamed"], untouched)
    else:  # the base code's module reads the restored database back
        after = snapshot.database_facts(db)
    differences = snapshot.compare(loaded["collections"], after)
    if differences:
        raise SystemExit(f"the restore differs from the backup: {differences[:3]}")


def _database(uri: str) -> str:
    return uri.rsplit("/", 1)[1].split("?")[0]


def _dump(backup, uri: str, dest: str, client) -> None:
    backup.dump(uri, dest, "pymongo", client=client)


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def measure(code: Path, uri: str, repeats: int, workdir: str) -> dict[str, list[float]]:
    """One checkout's measurements on the seeded database (run in a child process)."""
    import pymongo

    backup, snapshot, archive = load_toolkit(code)
    client = pymongo.MongoClient(uri)
    db = client.get_database(_database(uri))
    plain_db = client.get_database(PLAIN_DATABASE)
    times: dict[str, list[float]] = {"backup": [], "plain_backup": [], "restore": [], "plain_restore": []}
    for repeat in range(repeats):
        dest = os.path.join(workdir, f"bench-{repeat}.archive.gz")
        plain = os.path.join(workdir, f"plain-{repeat}.bin.gz")
        for path in (dest, backup.manifest_path_for(dest), plain):
            if os.path.exists(path):
                os.unlink(path)
        times["backup"].append(timed(_dump, backup, uri, dest, client))
        times["plain_backup"].append(timed(plain_dump, db, plain))
        client.drop_database(RESTORE_DATABASE)
        times["restore"].append(timed(toolkit_restore, backup, snapshot, uri, backup.manifest_path_for(dest), client))
        client.drop_database(PLAIN_DATABASE)
        times["plain_restore"].append(timed(plain_restore, plain_db, plain))
        for path in (dest, backup.manifest_path_for(dest), plain):
            os.unlink(path)
    client.drop_database(RESTORE_DATABASE)
    client.drop_database(PLAIN_DATABASE)
    client.close()
    return {"crc": getattr(archive, "CRC_IMPLEMENTATION", "python"), "times": times}


# ---------------------------------------------------------------------------------------------
# Report


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _fmt(values: list[float]) -> str:
    low, mid, high = _stats(values)
    return f"{low:.2f} / {mid:.2f} / {high:.2f}"


def report(results: list[dict], codes: list[Path]) -> str:
    lines = ["| code | messages | measure | toolkit s (min / median / max) | plain pymongo s (min / median / max) "
             "| toolkit / plain (medians) |", "|---|---|---|---|---|---|"]
    for row in results:
        for measure in ("backup", "restore"):
            toolkit, plain = row["times"][measure], row["times"]["plain_" + measure]
            ratio = statistics.median(toolkit) / statistics.median(plain)
            lines.append(f"| {row['label']} | {row['size']:,} | {measure} | {_fmt(toolkit)} | {_fmt(plain)} "
                         f"| {ratio:.2f}x |")
    lines += ["", "Growth (median seconds per 1,000 messages; the same figure at every size is linear growth):", "",
              "| code | measure | " + " | ".join(f"{size:,}" for size in sorted({r['size'] for r in results}))
              + " |", "|---|---|" + "---|" * len({r["size"] for r in results})]
    for code in codes:
        rows = sorted((r for r in results if r["code"] == str(code)), key=lambda r: r["size"])
        label = rows[0]["label"] if rows else str(code)
        for measure in ("backup", "plain_backup", "restore", "plain_restore"):
            cells = [f"{statistics.median(r['times'][measure]) / r['size'] * 1000:.3f}" for r in rows]
            lines.append(f"| {label} | {measure.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label(code: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return code.name
    return f"{rev}{'+' if dirty else ''}"


@contextlib.contextmanager
def database(uri: str | None, root: str):
    if uri:
        yield uri
        return
    sys.path.insert(0, str(ROOT))
    from tests.ferretdb_server import ferretdb

    base = os.environ.get("ROLLBACK_TEST_PORT_BASE")
    with ferretdb(Path(root) / "ferretdb", database=DATABASE, user="bench", password=secrets.token_hex(12),
                  port=int(base) + 70 if base else None) as server:
        yield server.uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="5000,25000,100000", help="message counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--uri",
                        help="a MongoDB URI whose database may be overwritten (default: a FerretDB of its own)")
    parser.add_argument("--code", action="append", type=Path,
                        help="checkout whose module_utils are measured (repeatable; default: this one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one checkout's measurements, as JSON on stdout
        spec = json.loads(args.child)
        print(json.dumps(measure(Path(spec["code"]), os.environ["BENCH_URI"], spec["repeats"], spec["workdir"])))
        return 0
    sizes = [int(size) for size in args.sizes.split(",") if size]
    codes = [code.resolve() for code in (args.code or [ROOT])]
    labels = {code: _label(code) for code in codes}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as root, database(args.uri, root) as uri:
        import pymongo

        client = pymongo.MongoClient(uri)
        for size in sizes:
            started = time.perf_counter()
            counts = seed(client.get_database(_database(uri)), size, random.Random(size))  # noqa: S311 - reproducible data
            print(f"seeded {counts} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            rows = {}
            for repeat in range(args.repeats):  # the checkouts take turns, one repeat each
                for code in codes:
                    spec = json.dumps({"code": str(code), "repeats": 1, "workdir": root})
                    out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True,
                                         text=True, env={**os.environ, "BENCH_URI": uri}, check=False)
                    if out.returncode != 0:
                        print(out.stderr, file=sys.stderr)
                        return 1
                    data = json.loads(out.stdout)
                    label = f"{labels[code]} (CRC {data['crc']})"
                    row = rows.setdefault(str(code), {"code": str(code), "label": label, "size": size, "times": {}})
                    for name, values in data["times"].items():
                        row["times"].setdefault(name, []).extend(values)
                    print(f"{size} #{repeat + 1}: {code}: {json.dumps(data['times'])}", file=sys.stderr)
            results.extend(rows.values())
        client.close()
    print(report(results, codes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
