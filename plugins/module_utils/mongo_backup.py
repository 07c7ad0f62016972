"""Backups of one MongoDB database as a mongodump archive (gzip) plus a JSON manifest, and restores.

Two engines make the same artifact, `mongodump --archive=F --gzip`'s format:

- `pymongo` writes the archive itself (mongo_archive.py): collections in name order, documents in
  natural order (as mongodump), indexes from listIndexes, options from listCollections. Works where the MongoDB
  database tools are not installed.
- `mongodump` runs the real tool. The URI goes to it through a `--config` file readable by its owner
  only, so the password is never in a process list.

Either engine's archive restores with either restore engine (`pymongo`, `mongorestore`).

The manifest is built from the archive as written, never from what the engine meant to write: for
mongodump by reading the archive back; for the pymongo engine from the bytes it wrote as it wrote them
(the sha256 of the compressed stream, checked against the file on disk, and each collection's facts from
the documents that went into the stream), so the data is read once. Its fields: {format, archive,
sha256, size, created_at, engine, tool_version, database, server_version, release, labels,
collections: {name: {count, indexes, options, content_sha256}}}. Archive X.archive.gz has manifest
X.manifest.json beside it; both are mode 0600 and appear atomically (written to a temporary name, then
renamed).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid as uuidlib

from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    CollectionEntry,
    metadata_json,
    parse_metadata,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    database_name,
    scrub,
    server_version,
    uri_without_database,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import (
    OrderedHasher,
    archive_facts,
    compare,
    is_user_collection,
    normalize_indexes,
    normalize_options,
)

try:
    import pymongo
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from bson.son import SON
    from pymongo.errors import PyMongoError

    PYMONGO_VERSION = pymongo.version
except ImportError:  # pragma: no cover - depends on the managed host
    PYMONGO_VERSION = None

    class PyMongoError(Exception):  # type: ignore[no-redef]
        pass


MANIFEST_FORMAT = 1
ARCHIVE_SUFFIX = ".archive.gz"
MANIFEST_SUFFIX = ".manifest.json"
BACKUP_ENGINES = ("auto", "pymongo", "mongodump")
RESTORE_ENGINES = ("auto", "pymongo", "mongorestore")
TOOL_TIMEOUT = 6 * 3600
INSERT_BATCH_DOCS = 1000
INSERT_BATCH_BYTES = 8 * 1024 * 1024
MANIFEST_KEYS = ("format", "archive", "sha256", "size", "created_at", "engine", "database", "collections")


class BackupError(Exception):
    """A backup, check or restore could not be done; the message says why (never the password)."""


def tool_version() -> str:
    return f"chatbot-rollback pymongo-engine (pymongo {PYMONGO_VERSION})"


# ---------------------------------------------------------------------------------------------
# Paths, files, manifest


def manifest_path_for(archive: str) -> str:
    """X.archive.gz -> X.manifest.json (any other name: NAME.manifest.json)."""
    base = archive[: -len(ARCHIVE_SUFFIX)] if archive.endswith(ARCHIVE_SUFFIX) else archive
    return base + MANIFEST_SUFFIX


def archive_path(manifest_path: str, manifest: dict) -> str:
    """The archive a manifest describes: its `archive` name, in the manifest's directory."""
    directory = os.path.dirname(os.path.abspath(manifest_path))
    return os.path.join(directory, os.path.basename(manifest["archive"]))


def file_sha256(path: str) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1024 * 1024)
            if not chunk:
                break
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str, data: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path)


def load_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise BackupError(f"manifest {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"manifest {path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"manifest {path} is not a JSON object")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise BackupError(f"manifest {path} lacks {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise BackupError(f"manifest {path} has format {manifest['format']!r}; this version reads "
                          f"format {MANIFEST_FORMAT}")
    if not isinstance(manifest["collections"], dict):
        raise BackupError(f"manifest {path}: collections is not a mapping")
    return manifest


def read_archive_facts(path: str) -> dict:
    """archive_facts() of an archive file; ArchiveError when it is unreadable or corrupt."""
    with open(path, "rb") as handle:
        return archive_facts(ArchiveReader(handle))


def build_manifest(archive: str, *, engine: str, database: str, release: str | None = None,
                   labels: dict | None = None, written: dict | None = None) -> dict:
    """The manifest of an archive.

    From the archive itself (read back and checked), or from `written`: what the pymongo engine
    computed from the very bytes it wrote ({sha256, size, facts}); the file on disk is then hashed
    again and must give the same sha256 (no second pass through the documents).
    """
    sha256, size = file_sha256(archive)
    if written is not None:
        if (sha256, size) != (written["sha256"], written["size"]):
            raise BackupError(f"the archive on disk (sha256 {sha256}, {size} bytes) is not what was written "
                              f"(sha256 {written['sha256']}, {written['size']} bytes)")
        facts = written["facts"]
    else:
        try:
            facts = read_archive_facts(archive)
        except ArchiveError as exc:
            raise BackupError(f"the archive just written does not read back: {exc}") from None
    if facts["database"] not in (None, database):
        raise BackupError(f"the archive holds database {facts['database']!r}, not {database!r}")
    return {
        "format": MANIFEST_FORMAT,
        "archive": os.path.basename(archive),
        "sha256": sha256,
        "size": size,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "engine": engine,
        "tool_version": facts["tool_version"],
        "database": database,
        "server_version": facts["server_version"],
        "release": release,
        "labels": dict(labels or {}),
        "collections": facts["collections"],
    }


def check(manifest_path: str, content: bool = True) -> list[str]:
    """Problems of a backup (empty list: intact); needs no server.

    With content=True the whole archive is read (CRCs, gzip checksum) and every collection's facts are
    recomputed and compared with the manifest. With content=False only the archive's size and sha256 are
    compared: an archive with the manifest's sha256 is byte for byte the one the manifest was made from
    (and checked against) when it was written, so reading its documents again tells nothing more.
    """
    try:
        manifest = load_manifest(manifest_path)
    except BackupError as exc:
        return [str(exc)]
    archive = archive_path(manifest_path, manifest)
    if not os.path.isfile(archive):
        return [f"archive {archive} is missing"]
    problems = []
    sha256, size = file_sha256(archive)
    if size != manifest.get("size"):
        problems.append(f"archive {archive} is {size} bytes, the manifest says {manifest.get('size')} "
                        "(truncated, tampered or corrupt)")
    if sha256 != manifest.get("sha256"):
        problems.append(f"archive {archive} has sha256 {sha256}, the manifest says {manifest.get('sha256')}: "
                        "tampered or corrupt")
    if not content:
        return problems
    try:
        facts = read_archive_facts(archive)
    except ArchiveError as exc:
        problems.append(f"archive {archive}: {exc}")
        return problems
    except OSError as exc:
        problems.append(f"archive {archive} is unreadable: {exc}")
        return problems
    if facts["database"] not in (None, manifest["database"]):
        problems.append(f"archive {archive} holds database {facts['database']!r}, the manifest says "
                        f"{manifest['database']!r}")
    problems.extend(f"archive {os.path.basename(archive)} vs manifest: {difference}"
                    for difference in compare(manifest["collections"], facts["collections"]))
    return problems


# ---------------------------------------------------------------------------------------------
# Engines


def find_tool(name: str) -> str | None:
    return shutil.which(name)


def resolve_engine(engine: str, tool: str) -> tuple[str, str | None]:
    """(engine name, tool path or None) for engine auto/pymongo/<tool>."""
    if engine == "pymongo":
        return "pymongo", None
    path = find_tool(tool)
    if engine == "auto":
        return (tool, path) if path else ("pymongo", None)
    if engine != tool:
        raise BackupError(f"unknown engine {engine!r}")
    if not path:
        raise BackupError(f"engine {tool} was asked for but {tool} is not on PATH")
    return tool, path


def run_tool(path: str, args: list[str], uri: str, timeout: int = TOOL_TIMEOUT) -> str:
    """Run mongodump/mongorestore with the URI in a private --config file; its scrubbed output."""
    fd, config = tempfile.mkstemp(prefix=".mongo-tool-", suffix=".yml")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("uri: " + json.dumps(uri) + "\n")  # a JSON string is a YAML double-quoted scalar
        command = [path, f"--config={config}", *args]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BackupError(f"{os.path.basename(path)} did not finish in {timeout}s") from None
        except OSError as exc:
            raise BackupError(f"cannot run {path}: {exc}") from None
    finally:
        os.unlink(config)
    output = scrub((proc.stderr or "") + (proc.stdout or ""), uri)
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-6:])
        raise BackupError(f"{os.path.basename(path)} failed (rc={proc.returncode}): {tail}")
    return output


def _uuid_hex(info: dict) -> str | None:
    value = (info.get("info") or {}).get("uuid")
    if value is None:
        return None
    try:
        return uuidlib.UUID(bytes=bytes(value)).hex if not isinstance(value, uuidlib.UUID) else value.hex
    except (TypeError, ValueError):
        return None


def _plain(doc) -> SON:
    """A decoded document as SON (key order kept), recursively for sub-documents."""
    return SON((key, _plain(value) if isinstance(value, dict) else value) for key, value in doc.items())


class _HashingWriter:
    """A binary file object that also hashes (sha256) and counts what goes through it."""

    def __init__(self, fileobj) -> None:
        self._file = fileobj
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()


def write_archive(client, database: str, fileobj) -> dict:
    """The pymongo engine: the database as an archive on fileobj.

    Returns {sha256, size, facts}: the sha256 and size of the bytes written to fileobj and the facts of
    every collection (as archive_facts() reads them back) computed from the documents as they went into
    the archive.
    """
    db = client.get_database(database)
    infos = sorted((info for info in db.list_collections() if is_user_collection(info["name"])),
                   key=lambda info: info["name"])
    entries = []
    for info in infos:
        kind = info.get("type", "collection")
        if kind not in ("collection", "view"):
            raise BackupError(f"collection {info['name']!r} is a {kind} collection, which the pymongo "
                              "engine does not dump; use the mongodump engine")
        indexes = [] if kind == "view" else [_plain(index) for index in
                                             db.get_collection(info["name"]).list_indexes()]
        # The metadata as the archive stores it (Extended JSON text), so that the facts below are those a
        # reader of the archive computes.
        text = metadata_json(info["name"], indexes, _plain(info.get("options") or {}), _uuid_hex(info), kind)
        entries.append(CollectionEntry(database, info["name"], text, kind))
    out = _HashingWriter(fileobj)
    version = server_version(client)
    writer = ArchiveWriter(out, server_version=version, tool_version=tool_version())
    writer.write_prelude(entries)
    facts = {}
    for entry in entries:
        if entry.type == "view":
            writer.write_collection(database, entry.collection, ())
            continue
        raw = db.get_collection(entry.collection, codec_options=CodecOptions(document_class=RawBSONDocument))
        # Natural order, as mongodump dumps (a server sort by _id costs FerretDB twice the time); the hasher
        # sorts by _id itself when the documents do not come in that order.
        hasher = OrderedHasher()
        docs = (hasher.add(doc.raw) or doc.raw for doc in raw.find({}, batch_size=1000))
        writer.write_collection(database, entry.collection, docs)
        metadata = parse_metadata(entry.metadata)
        facts[entry.collection] = {
            "count": hasher.count,
            "indexes": normalize_indexes(metadata.get("indexes", [])),
            "options": normalize_options(metadata.get("options", {})),
            "content_sha256": hasher.hexdigest(),
        }
    writer.close()
    return {"sha256": out.sha256.hexdigest(), "size": out.size, "facts": {
        "database": database, "server_version": version or "", "tool_version": tool_version(),
        "collections": dict(sorted(facts.items()))}}


def dump(uri: str, dest: str, engine: str = "auto", *, client=None, release: str | None = None,
         labels: dict | None = None) -> dict:
    """Back the URI's database up to dest (an archive) and write its manifest; the manifest.

    `client` (a connected MongoClient) is needed by the pymongo engine.
    """
    database = database_name(uri)
    engine_name, tool = resolve_engine(engine, "mongodump")
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise BackupError(f"directory {directory} does not exist")
    partial = dest + ".partial"
    if os.path.lexists(partial):
        os.unlink(partial)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = None
    try:
        if engine_name == "pymongo":
            if client is None:
                raise BackupError("the pymongo engine needs a connected client")
            with os.fdopen(fd, "wb") as handle:
                try:
                    written = write_archive(client, database, handle)
                except PyMongoError as exc:
                    raise BackupError(f"dumping {database} failed: {scrub(str(exc), uri)}") from None
                handle.flush()
                os.fsync(handle.fileno())
        else:
            os.close(fd)
            run_tool(tool, [f"--archive={partial}", "--gzip", f"--db={database}"], uri_without_database(uri))
            os.chmod(partial, 0o600)
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(partial, dest)
        _fsync_dir(dest)
    except BaseException:
        if os.path.lexists(partial):
            os.unlink(partial)
        raise
    try:
        manifest = build_manifest(dest, engine=engine_name, database=database, release=release, labels=labels,
                                  written=written if written and written["facts"] else None)
        write_json_atomic(manifest_path_for(dest), manifest)
    except BaseException:  # an archive without its manifest is no backup, and would block the next attempt
        if os.path.lexists(dest):
            os.unlink(dest)
        raise
    return manifest


def _source_database(reader: ArchiveReader) -> str:
    databases = sorted({entry.db for entry in reader.collections})
    if len(databases) > 1:
        raise BackupError(f"the archive holds several databases ({', '.join(databases)}); one is expected")
    return databases[0] if databases else ""


def _insert(docs, target, hasher=None) -> int:
    """insert_many raw documents in batches (each also added to the hasher when given); how many."""
    batch, size, count = [], 0, 0
    for raw in docs:
        if hasher is not None:
            hasher.add(raw)
        batch.append(RawBSONDocument(raw))
        size += len(raw)
        count += 1
        if len(batch) >= INSERT_BATCH_DOCS or size >= INSERT_BATCH_BYTES:
            target.insert_many(batch, ordered=True)
            batch, size = [], 0
    if batch:
        target.insert_many(batch, ordered=True)
    return count


def _index_specs(metadata: dict) -> list:
    specs = []
    for index in metadata.get("indexes", []):
        if index.get("name") == "_id_":
            continue
        specs.append(SON((key, value) for key, value in index.items() if key not in ("v", "ns")))
    return specs


def _create_indexes(db, name: str, metadata: dict) -> list[str]:
    specs = _index_specs(metadata)
    if specs:
        db.command(SON([("createIndexes", name), ("indexes", specs)]))
    return [spec["name"] for spec in specs]


def _drop_extra(db, keep: set[str]) -> list[str]:
    dropped = []
    for name in sorted(db.list_collection_names()):
        if is_user_collection(name) and name not in keep:
            db.drop_collection(name)
            dropped.append(name)
    return dropped


def _ns_pattern(name: str) -> str:
    return name.replace("\\", "\\\\").replace("*", "\\*")


def restore(uri: str, archive: str, target_db: str | None = None, drop_extra_collections: bool = True,
            engine: str = "auto", *, client=None, collections: list[str] | None = None) -> dict:
    """Restore an archive into target_db (default: the URI's database).

    Each restored collection is dropped and recreated (options, documents, indexes). `collections`
    limits the restore to those names (the others are left as they are). drop_extra_collections also
    drops the target's collections that the archive lacks, which `mongorestore --drop` leaves.
    Returns {engine, database, restored: {name: count}, indexes: {name: [names]}, dropped: [...],
    skipped: [...], streamed: {name: {count, content_sha256}}}; streamed (pymongo engine only) holds the
    facts of the documents inserted, hashed as they were read from the archive (see restored_facts()).
    """
    if client is None:
        raise BackupError("restore needs a connected client")
    target_db = target_db or database_name(uri)
    engine_name, tool = resolve_engine(engine, "mongorestore")
    db = client.get_database(target_db)
    result = {"engine": engine_name, "database": target_db, "restored": {}, "indexes": {}, "dropped": [],
              "skipped": [], "streamed": {}}
    wanted = set(collections) if collections is not None else None
    try:
        with open(archive, "rb") as handle:
            reader = ArchiveReader(handle)
            source = _source_database(reader)
            in_archive = {entry.collection for entry in reader.collections}
            selected = [entry for entry in reader.collections if is_user_collection(entry.collection)
                        and (wanted is None or entry.collection in wanted)]
            result["skipped"] = sorted(name for name in in_archive if not is_user_collection(name))
            if engine_name == "pymongo":
                _restore_pymongo(reader, db, {entry.collection for entry in selected}, result)
        if engine_name == "mongorestore":
            _restore_mongorestore(tool, uri, archive, source, target_db, selected, db, result)
        if drop_extra_collections:
            result["dropped"] = _drop_extra(db, in_archive)
    except ArchiveError as exc:
        raise BackupError(f"archive {archive}: {exc}") from None
    except PyMongoError as exc:
        raise BackupError(f"restoring into {target_db} failed: {scrub(str(exc), uri)}") from None
    return result


def _restore_pymongo(reader: ArchiveReader, db, selected: set[str], result: dict) -> None:
    for _source, name, metadata, docs in reader:
        if name not in selected:
            for _skipped in docs:
                pass
            continue
        db.drop_collection(name)
        options = metadata.get("options") or {}
        db.command(SON([("create", name), *options.items()]))
        target = db.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
        hasher = OrderedHasher()
        result["restored"][name] = _insert(docs, target, hasher)
        result["streamed"][name] = {"count": hasher.count, "content_sha256": hasher.hexdigest()}
        result["indexes"][name] = _create_indexes(db, name, metadata)


def _restore_mongorestore(tool: str, uri: str, archive: str, source: str, target_db: str, selected: list,
                          db, result: dict) -> None:
    if not selected:
        return
    args = [f"--archive={archive}", "--gzip", "--drop", "--stopOnError", "--noIndexRestore"]
    # Indexes are created below with pymongo: mongorestore adds "ns" to every index spec, which some
    # servers (FerretDB) reject.
    args += [f"--nsInclude={_ns_pattern(source)}.{_ns_pattern(entry.collection)}" for entry in selected]
    if target_db != source:
        args += [f"--nsFrom={_ns_pattern(source)}.*", f"--nsTo={_ns_pattern(target_db)}.*"]
    run_tool(tool, args, uri_without_database(uri))
    for entry in selected:
        result["restored"][entry.collection] = db.get_collection(entry.collection).count_documents({})
        if entry.type != "view":
            result["indexes"][entry.collection] = _create_indexes(db, entry.collection, entry.metadata)


__all__ = [
    "BACKUP_ENGINES",
    "RESTORE_ENGINES",
    "BackupError",
    "archive_path",
    "build_manifest",
    "check",
    "dump",
    "file_sha256",
    "load_manifest",
    "manifest_path_for",
    "restore",
]


def supersede(manifest_path: str, manifest: dict) -> dict[str, str]:
    """Move an intact backup aside as NAME.superseded-<its created_at> (archive and manifest, the manifest's
    `archive` updated), so that a new backup can take its name and the earlier one is kept."""
    archive = archive_path(manifest_path, manifest)
    stamp = str(manifest.get("created_at") or "unknown").replace(":", "").replace("+0000", "Z")
    base = archive[: -len(ARCHIVE_SUFFIX)] if archive.endswith(ARCHIVE_SUFFIX) else archive
    new_archive = f"{base}.superseded-{stamp}{ARCHIVE_SUFFIX}"
    new_manifest = manifest_path_for(new_archive)
    if os.path.exists(new_archive) or os.path.exists(new_manifest):
        raise BackupError(f"cannot move {archive} aside: {new_archive} already exists")
    os.link(archive, new_archive)
    write_json_atomic(new_manifest, {**manifest, "archive": os.path.basename(new_archive)})
    problems = check(new_manifest, content=False)  # the same file (a hard link): the sha256 tells
    if problems:
        os.unlink(new_archive)
        os.unlink(new_manifest)
        raise BackupError(f"the copy of {archive} set aside is not intact: {'; '.join(problems)}")
    os.unlink(manifest_path)
    os.unlink(archive)
    return {"archive": new_archive, "manifest": new_manifest}
