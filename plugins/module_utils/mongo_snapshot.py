"""Facts of a database, or of an archive of one, that tell whether two of them hold the same data.

Per collection (system.* collections and views excluded):

- count: the number of documents;
- indexes: each index as {name, key: [[field, direction], ...], unique/sparse/expireAfterSeconds/
  partialFilterExpression when set}, sorted by name (`v` and `ns` dropped);
- options: the collection options (capped, size...), as JSON;
- content_sha256: sha256 over the raw BSON bytes of every document, taken in `_id` order.

`_id` order is MongoDB's sort order (type order first: numbers < strings < objects < ... < ObjectId <
booleans < dates..., numbers compared by value whatever their BSON type, strings by UTF-8 bytes).
The hash is the same whatever order the documents come in: hashed as they come while they are in `_id`
order (the usual case: natural order of ObjectIds inserted in turn), else sorted here through a temporary
file (mongodump's natural order of other _ids). It does not need dbHash, which FerretDB lacks and which
blocks writes on MongoDB.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import json
import math
import struct
import tempfile
import traceback
from collections.abc import Iterable

from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import ArchiveError, document_id

try:
    from bson import json_util
    from bson.binary import Binary
    from bson.code import Code
    from bson.codec_options import CodecOptions
    from bson.datetime_ms import DatetimeMS
    from bson.dbref import DBRef
    from bson.decimal128 import Decimal128
    from bson.max_key import MaxKey
    from bson.min_key import MinKey
    from bson.objectid import ObjectId
    from bson.raw_bson import RawBSONDocument
    from bson.regex import Regex
    from bson.timestamp import Timestamp
    from pymongo.errors import OperationFailure

    HAS_BSON = True
    BSON_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the managed host
    HAS_BSON = False
    BSON_IMPORT_ERROR = traceback.format_exc()

    class OperationFailure(Exception):  # type: ignore[no-redef]
        pass

SPOOL_MEMORY = 32 * 1024 * 1024
_INT32 = struct.Struct("<i")
_INT64 = struct.Struct("<q")
_DOUBLE = struct.Struct("<d")
INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")


def is_user_collection(name: str) -> bool:
    return not name.startswith("system.")


# ---------------------------------------------------------------------------------------------
# _id order


def id_sort_key(value) -> tuple:
    """A key that orders decoded BSON values the way MongoDB sorts them (dates as DatetimeMS/datetime)."""
    if value is None:
        return (2,)
    if isinstance(value, bool):
        return (9, value)
    if isinstance(value, int):
        return (3, 1, value)
    if isinstance(value, float):
        return (3, 0) if math.isnan(value) else (3, 1, value)
    if isinstance(value, Decimal128):
        number = value.to_decimal()
        return (3, 0) if number.is_nan() else (3, 1, number)
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, DBRef):
        return _object_key(value.as_doc())
    if isinstance(value, dict):
        return _object_key(value)
    if isinstance(value, (list, tuple)):
        return (6, tuple(_element_key(str(i), v) for i, v in enumerate(value)))
    if isinstance(value, Binary):
        return (7, len(value), value.subtype, bytes(value))
    if isinstance(value, bytes):
        return (7, len(value), 0, value)
    if isinstance(value, ObjectId):
        return (8, value.binary)
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return (10, _millis(value))
    if isinstance(value, Timestamp):
        return (11, value.time, value.inc)
    if isinstance(value, Regex):
        return (12, value.pattern, str(value.flags))
    if isinstance(value, Code):
        return (13, str(value), _object_key(value.scope or {}))
    if isinstance(value, MinKey):
        return (1,)
    if isinstance(value, MaxKey):
        return (20,)
    return (14, type(value).__name__, repr(value))


def _element_key(name: str, value) -> tuple:
    key = id_sort_key(value)
    return (key[0], name, key)


def _object_key(doc) -> tuple:
    return (5, tuple(_element_key(name, value) for name, value in doc.items()))


def _millis(value) -> int:
    if isinstance(value, datetime.datetime):
        offset = value.utcoffset()
        if offset is not None:
            value = value - offset
        return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000
    return int(value)


_ID_PREFIX = b"_id\x00"


def raw_id_key(raw: bytes) -> tuple:
    """id_sort_key() of a raw document's _id, read straight from the bytes for the usual _id types.

    ObjectId, string, int32/int64 and double _ids (the first element) give the very key id_sort_key()
    gives for the decoded value; anything else is decoded.
    """
    if raw[5:9] == _ID_PREFIX:
        kind = raw[4]
        if kind == 0x07:
            return (8, raw[9:21])
        if kind == 0x02:
            size = _INT32.unpack_from(raw, 9)[0]
            try:
                return (4, raw[13:12 + size].decode("utf-8"))
            except UnicodeDecodeError:
                pass
        elif kind == 0x10:
            return (3, 1, _INT32.unpack_from(raw, 9)[0])
        elif kind == 0x12:
            return (3, 1, _INT64.unpack_from(raw, 9)[0])
        elif kind == 0x01:
            value = _DOUBLE.unpack_from(raw, 9)[0]
            return (3, 0) if math.isnan(value) else (3, 1, value)
    return id_sort_key(document_id(raw))


class OrderedHasher:
    """sha256 of raw BSON documents in _id order, whatever order they are added in.

    While the documents come sorted it hashes as they come; the first one out of order switches to
    sorting them all (from a temporary file, so memory holds only their keys). With spool=False there
    is no temporary file: a document out of order sets `out_of_order` and the caller starts again.
    """

    def __init__(self, spool: bool = True) -> None:
        self._sha = hashlib.sha256()
        self._last: tuple | None = None
        self._sorted = True
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) if spool else None  # noqa: SIM115
        self.count = 0

    @property
    def out_of_order(self) -> bool:
        return not self._sorted

    def add(self, raw: bytes) -> None:
        raw = bytes(raw)
        if self._sorted:
            key = raw_id_key(raw)
            if self._last is not None and not self._last < key:
                self._sorted = False
            else:
                self._sha.update(raw)
                self._last = key
        if self._spool is not None:
            self._spool.write(raw)
        self.count += 1

    def update(self, docs: Iterable[bytes]) -> OrderedHasher:
        for raw in docs:
            self.add(raw)
        return self

    def hexdigest(self) -> str:
        if self._sorted:
            if self._spool is not None:
                self._spool.close()
            return self._sha.hexdigest()
        if self._spool is None:
            raise ValueError("documents came out of _id order and were not kept: hash them again")
        entries = []
        self._spool.seek(0)
        offset = 0
        while True:
            prefix = self._spool.read(4)
            if not prefix:
                break
            size = int.from_bytes(prefix, "little", signed=True)
            raw = prefix + self._spool.read(size - 4)
            # Equal keys (duplicate or numerically equal _id) fall back to the bytes: still order-independent.
            entries.append((raw_id_key(raw), hashlib.sha256(raw).digest(), offset, size))
            offset += size
        entries.sort(key=lambda e: (e[0], e[1]))
        sha = hashlib.sha256()
        for _key, _digest, start, size in entries:
            self._spool.seek(start)
            sha.update(self._spool.read(size))
        self._spool.close()
        return sha.hexdigest()


def content_sha256(docs: Iterable[bytes]) -> tuple[int, str]:
    """(count, sha256) of raw BSON documents given in any order."""
    hasher = OrderedHasher().update(docs)
    return hasher.count, hasher.hexdigest()


# ---------------------------------------------------------------------------------------------
# Indexes and options


def to_json(value):
    """A BSON value as plain JSON data (Int64 -> int, dates -> {"$date": ...}...)."""
    return json.loads(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS))


def _direction(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def normalize_index(index) -> dict:
    """One index (from listIndexes or archive metadata) in a comparable, JSON-safe form."""
    index = to_json(dict(index))
    result = {"name": index.get("name"), "key": [[field, _direction(d)] for field, d in index["key"].items()]}
    for option in INDEX_OPTIONS:
        value = index.get(option)
        if option in ("unique", "sparse"):
            if value:
                result[option] = True
        elif value is not None:
            result[option] = _direction(value)
    return result


def normalize_indexes(indexes: Iterable) -> list[dict]:
    return sorted((normalize_index(index) for index in indexes), key=lambda ix: str(ix["name"]))


def normalize_options(options) -> dict:
    return {key: _direction(value) for key, value in sorted(to_json(dict(options or {})).items())}


# ---------------------------------------------------------------------------------------------
# Facts


def list_user_collections(database) -> list[dict]:
    """listCollections entries of the plain collections (no system.*, no views), sorted by name."""
    infos = [info for info in database.list_collections()
             if is_user_collection(info["name"]) and info.get("type", "collection") == "collection"]
    return sorted(infos, key=lambda info: info["name"])


def collection_facts(database, name: str, options=None, exclude=None) -> dict:
    """count, indexes, options and content_sha256 of one collection of a pymongo Database.

    exclude(raw) -> bool leaves documents out of the count and the hash (the sessions a restore keeps).
    """
    raw = database.get_collection(name, codec_options=CodecOptions(document_class=RawBSONDocument))
    # In natural order: asking the server to sort by _id costs it more than the hasher's check (FerretDB
    # takes twice as long), and natural order is usually _id order already (ObjectIds inserted in turn).
    hasher = OrderedHasher()
    for doc in raw.find({}, batch_size=1000):
        if exclude is None or not exclude(doc.raw):
            hasher.add(doc.raw)
    if options is None:
        info = next(iter(database.list_collections(filter={"name": name})), {})
        options = info.get("options", {})
    return {
        "count": hasher.count,
        "indexes": normalize_indexes(database.get_collection(name).list_indexes()),
        "options": normalize_options(options),
        "content_sha256": hasher.hexdigest(),
    }


def database_facts(database, collections: Iterable[str] | None = None, exclude: dict | None = None
                   ) -> dict[str, dict]:
    """Facts of every user collection of the database (or of those named that exist).

    exclude: {collection: exclude(raw) -> bool} (see collection_facts).
    """
    wanted = set(collections) if collections is not None else None
    facts = {}
    for info in list_user_collections(database):
        if wanted is None or info["name"] in wanted:
            facts[info["name"]] = collection_facts(database, info["name"], info.get("options", {}),
                                                   (exclude or {}).get(info["name"]))
    return facts


def server_count(database, name: str) -> int:
    """The document count the server keeps for a collection (collStats: no scan), else counted."""
    try:
        return int(database.command("collStats", name)["count"])
    except (OperationFailure, KeyError, TypeError, ValueError):
        return database.get_collection(name).count_documents({})


def restored_facts(database, streamed: dict[str, dict], before: dict[str, dict],
                   exclude: dict | None = None) -> dict[str, dict]:
    """Facts of a database just restored, without reading back the documents that were restored.

    streamed: {collection: {count, content_sha256}} of the documents inserted, hashed as they went in.
    Such a collection's facts are the server's count (collStats), its indexes and options, and the streamed
    hash; a collection not restored keeps its `before` facts (it was not touched); any other collection,
    or one in `exclude` (whose documents the restore changed after inserting), is read.
    """
    facts = {}
    for info in list_user_collections(database):
        name = info["name"]
        if name in streamed and name not in (exclude or {}):
            count = server_count(database, name)
            facts[name] = {
                "count": count,
                "indexes": normalize_indexes(database.get_collection(name).list_indexes()),
                "options": normalize_options(info.get("options", {})),
                # The hash of what was inserted stands for the collection only when the server holds as many.
                "content_sha256": streamed[name]["content_sha256"] if count == streamed[name]["count"] else None,
            }
        elif name in before and name not in streamed and name not in (exclude or {}):
            facts[name] = before[name]
        else:
            facts[name] = collection_facts(database, name, info.get("options", {}), (exclude or {}).get(name))
    return facts


def archive_facts(reader) -> dict:
    """Facts of an ArchiveReader's collections (read to its end, CRCs checked).

    {"database", "server_version", "tool_version", "collections": {name: facts}}.
    """
    databases = {entry.db for entry in reader.collections}
    if len(databases) > 1:
        raise ArchiveError(f"the archive holds several databases ({', '.join(sorted(databases))}); "
                           "one is expected")
    types = {entry.collection: entry.type for entry in reader.collections}
    collections = {}
    for _db, name, metadata, docs in reader:
        if not is_user_collection(name) or types.get(name) not in ("collection", ""):
            for _skipped in docs:
                pass
            continue
        hasher = OrderedHasher().update(docs)
        collections[name] = {
            "count": hasher.count,
            "indexes": normalize_indexes(metadata.get("indexes", [])),
            "options": normalize_options(metadata.get("options", {})),
            "content_sha256": hasher.hexdigest(),
        }
    return {
        "database": databases.pop() if databases else None,
        "server_version": reader.server_version,
        "tool_version": reader.tool_version,
        "collections": dict(sorted(collections.items())),
    }


def counts(facts: dict[str, dict]) -> dict[str, int]:
    return {name: fact["count"] for name, fact in sorted(facts.items())}


# ---------------------------------------------------------------------------------------------
# Comparison


def _short(digest: str | None) -> str:
    return (digest or "none")[:12]


def _index_text(index: dict) -> str:
    return json.dumps(index, sort_keys=True, separators=(",", ":"))


def compare_collection(name: str, expected: dict, actual: dict) -> list[str]:
    """Differences of one collection (empty when it matches)."""
    problems = []
    if expected.get("count") != actual.get("count"):
        problems.append(f"collection {name!r}: {actual.get('count')} documents, "
                        f"expected {expected.get('count')}")
    if expected.get("content_sha256") != actual.get("content_sha256"):
        problems.append(f"collection {name!r}: content differs (sha256 "
                        f"{_short(actual.get('content_sha256'))}..., "
                        f"expected {_short(expected.get('content_sha256'))}...)")
    want = {ix["name"]: ix for ix in expected.get("indexes", [])}
    have = {ix["name"]: ix for ix in actual.get("indexes", [])}
    for index in sorted(set(want) - set(have)):
        problems.append(f"collection {name!r}: index {index!r} is missing ({_index_text(want[index])})")
    for index in sorted(set(have) - set(want)):
        problems.append(f"collection {name!r}: unexpected index {index!r} ({_index_text(have[index])})")
    for index in sorted(set(want) & set(have)):
        if want[index] != have[index]:
            problems.append(f"collection {name!r}: index {index!r} differs: {_index_text(have[index])}, "
                            f"expected {_index_text(want[index])}")
    if "options" in expected and "options" in actual and expected["options"] != actual["options"]:
        problems.append(f"collection {name!r}: options {json.dumps(actual['options'], sort_keys=True)}, "
                        f"expected {json.dumps(expected['options'], sort_keys=True)}")
    return problems


def compare(expected: dict[str, dict], actual: dict[str, dict], ignore_extra: bool = False) -> list[str]:
    """Human-readable differences between two {collection: facts} maps (empty when they match)."""
    problems = []
    for name in sorted(set(expected) - set(actual)):
        problems.append(f"collection {name!r} is missing (expected {expected[name].get('count')} documents)")
    if not ignore_extra:
        for name in sorted(set(actual) - set(expected)):
            problems.append(f"collection {name!r} is extra: not in the reference "
                            f"({actual[name].get('count')} documents)")
    for name in sorted(set(expected) & set(actual)):
        problems.extend(compare_collection(name, expected[name], actual[name]))
    return problems


def differing_collections(expected: dict[str, dict], actual: dict[str, dict]) -> list[str]:
    """Names of the expected collections that are missing from actual or differ there."""
    return sorted(name for name in expected
                  if name not in actual or compare_collection(name, expected[name], actual[name]))
