"""Writing and reading the mongodump archive format (what `mongodump --archive=F --gzip` writes).

Layout (all integers little-endian, documents are BSON):

    magic number 0x8199e26d (bytes 6d e2 99 81)
    header          {concurrent_collections: int32, version: "0.1", server_version, tool_version}
    one document per collection
                    {db, collection, metadata: canonical Extended JSON of
                     {options?, indexes, uuid?, collectionName, type?}, size: int32, type}
    terminator      ff ff ff ff
    then blocks, each ended by a terminator:
      segment       {db, collection, EOF: false, CRC: int64 0}, zero or more documents
      end           {db, collection, EOF: true, CRC: int64 CRC-64/ECMA of all its documents}

Segments of different collections may interleave (mongodump dumps several collections at a time);
an empty collection still has one empty segment before its end block, as mongodump writes it.
With --gzip the whole stream is one gzip member (not a member per block).

The CRC is Go's crc64 with the ECMA table (CRC-64/XZ: reflected polynomial 0xC96C5795D7870F42,
initial value and final xor all ones), stored as the int64 with the same 64 bits.

Everything streams: the writer takes iterators of raw BSON documents and the reader yields them one
by one, so a whole database is never held in memory (interleaved segments of a collection that is
not being read yet go to a temporary file).
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
import tempfile
import traceback
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

try:
    import bson
    from bson import json_util
    from bson.errors import InvalidBSON
    from bson.int64 import Int64
    from bson.son import SON

    HAS_BSON = True
    BSON_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the managed host
    HAS_BSON = False
    BSON_IMPORT_ERROR = traceback.format_exc()

MAGIC = b"\x6d\xe2\x99\x81"  # 0x8199e26d, little-endian
TERMINATOR = b"\xff\xff\xff\xff"
FORMAT_VERSION = "0.1"
MAX_BSON_SIZE = 16 * 1024 * 1024  # mongo-tools' limit for one document in an archive
GZIP_MAGIC = b"\x1f\x8b"
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_MASK64 = (1 << 64) - 1
SPOOL_MEMORY = 32 * 1024 * 1024
WRITE_CHUNK = 256 * 1024
READ_CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The stream is not a valid mongodump archive: bad magic, truncated, corrupt, CRC mismatch."""


# ---------------------------------------------------------------------------------------------
# CRC-64/ECMA as Go's hash/crc64 computes it (table-driven, eight bytes at a time).

_POLY = 0xC96C5795D7870F42


def _tables() -> list[list[int]]:
    first = []
    for i in range(256):
        crc = i
        for _bit in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _table in range(7):
        tables.append([first[c & 0xFF] ^ (c >> 8) for c in tables[-1]])
    return tables


_T = _tables()
_LITTLE_ENDIAN = sys.byteorder == "little"


def _crc_update(crc: int, data) -> int:
    """Feed bytes to an inverted (running) CRC register (the pure-Python implementation)."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    view = memoryview(data)
    head = len(view) - len(view) % 8 if _LITTLE_ENDIAN else 0
    if head:
        for word in view[:head].cast("Q"):
            crc ^= word
            crc = (t7[crc & 0xFF] ^ t6[(crc >> 8) & 0xFF] ^ t5[(crc >> 16) & 0xFF] ^ t4[(crc >> 24) & 0xFF]
                   ^ t3[(crc >> 32) & 0xFF] ^ t2[(crc >> 40) & 0xFF] ^ t1[(crc >> 48) & 0xFF] ^ t0[crc >> 56])
    for byte in view[head:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def crc64_python(data, value: int = 0) -> int:
    """CRC-64/ECMA of data, continuing from the CRC `value` of the bytes before it (pure Python)."""
    return _crc_update(value ^ _MASK64, data) ^ _MASK64


# The same CRC in C (crcmod-plus, a compiled extension) where it is installed; the managed host may
# lack it, then the pure-Python code above gives the same values (tests check that they agree).
try:
    import crcmod as _crcmod

    _crc64_c = _crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=_MASK64)
    if _crc64_c(b"123456789") != 0x995DC9BBDF1939FA:  # pragma: no cover - a broken build
        raise ImportError("crcmod gives a wrong CRC-64/ECMA check value")
except ImportError:  # pragma: no cover - depends on the managed host
    _crc64_c = None


def crc64_c(data, value: int = 0) -> int:
    """CRC-64/ECMA through crcmod-plus's C extension (ImportError when it is not installed)."""
    if _crc64_c is None:
        raise ImportError("crcmod-plus is not installed")
    return _crc64_c(data, value)


CRC_IMPLEMENTATION = "crcmod" if _crc64_c is not None else "python"
_crc64_update = _crc64_c or crc64_python


class Crc64:
    """Running CRC-64/ECMA (Go's crc64.New(crc64.MakeTable(crc64.ECMA)))."""

    __slots__ = ("_update", "value")

    def __init__(self, implementation: str | None = None) -> None:
        self.value = 0
        if implementation is None:
            self._update = _crc64_update
        elif implementation == "python":
            self._update = crc64_python
        elif implementation == "crcmod":
            self._update = crc64_c
        else:
            raise ValueError(f"unknown CRC implementation {implementation!r}")

    def update(self, data) -> None:
        self.value = self._update(data, self.value)


def crc64(data, implementation: str | None = None) -> int:
    crc = Crc64(implementation)
    crc.update(data)
    return crc.value


def _to_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# ---------------------------------------------------------------------------------------------
# Collection metadata (the JSON text mongodump stores per collection).


def _require_bson() -> None:
    if not HAS_BSON:
        raise ImportError("the bson package (part of pymongo) is required")


def metadata_json(collection: str, indexes: list, options: dict | None = None, uuid: str | None = None,
                  collection_type: str = "collection") -> str:
    """The metadata text of a collection, as mongodump writes it (canonical Extended JSON v2)."""
    _require_bson()
    doc = SON()
    if options:
        doc["options"] = options
    doc["indexes"] = list(indexes)
    if uuid:
        doc["uuid"] = uuid
    doc["collectionName"] = collection
    if collection_type:
        doc["type"] = collection_type
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":"),
                           ensure_ascii=False)


def parse_metadata(text: str) -> dict:
    """The metadata text as a dict (BSON types restored: {"$numberLong": ...} -> Int64...)."""
    _require_bson()
    if not text:
        return {"indexes": []}
    try:
        value = json_util.loads(text)
    except (ValueError, TypeError) as exc:
        raise ArchiveError(f"collection metadata is not valid Extended JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ArchiveError("collection metadata is not a JSON object")
    value.setdefault("indexes", [])
    return value


class CollectionEntry(NamedTuple):
    """One collection announced in the prelude of an archive."""

    db: str
    collection: str
    metadata: dict
    type: str = "collection"
    size: int = 0

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"


class ArchiveCollection(NamedTuple):
    """A collection read from an archive: unpacks as (db, collection, metadata, docs)."""

    db: str
    collection: str
    metadata: dict
    docs: Iterator[bytes]


# ---------------------------------------------------------------------------------------------
# Writer


def _check_document(raw: bytes) -> None:
    if len(raw) < 5 or _INT32.unpack_from(raw)[0] != len(raw) or raw[-1] != 0:
        raise ArchiveError("not a BSON document (length prefix or terminating NUL is wrong)")
    if len(raw) > MAX_BSON_SIZE:
        raise ArchiveError(f"document of {len(raw)} bytes exceeds the archive limit of {MAX_BSON_SIZE}")


class ArchiveWriter:
    """Writes an archive to a binary file object (gzip-compressed as a whole when compress=True).

    Use write_prelude() once, then write_collection() per collection (or the lower-level
    write_documents()/end_collection() to interleave segments), then close(). close() finishes the
    compressed stream but leaves the file object open.
    """

    def __init__(self, fileobj, *, server_version: str, tool_version: str, compress: bool = True,
                 concurrent_collections: int = 1, compresslevel: int = 6) -> None:
        _require_bson()
        self._file = fileobj
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0,
                                   compresslevel=compresslevel) if compress else None
        self._out = self._gzip or fileobj
        self._header = SON([("concurrent_collections", int(concurrent_collections)),
                            ("version", FORMAT_VERSION), ("server_version", server_version or ""),
                            ("tool_version", tool_version or "")])
        self._announced: list[str] = []
        self._state: dict[str, dict] = {}
        self._segment: str | None = None
        self._closed = False

    def write_prelude(self, entries: Iterable[CollectionEntry]) -> None:
        if self._announced or self._state:
            raise ArchiveError("the prelude was written already")
        self._out.write(MAGIC)
        self._out.write(bson.encode(self._header))
        for entry in entries:
            text = entry.metadata if isinstance(entry.metadata, str) else metadata_json(
                entry.collection, entry.metadata.get("indexes", []), entry.metadata.get("options"),
                entry.metadata.get("uuid"), entry.metadata.get("type", entry.type))
            self._out.write(bson.encode(SON([("db", entry.db), ("collection", entry.collection),
                                             ("metadata", text), ("size", int(entry.size)),
                                             ("type", entry.type or "")])))
            ns = entry.namespace
            if ns in self._state:
                raise ArchiveError(f"collection {ns} is announced twice")
            self._announced.append(ns)
            self._state[ns] = {"crc": Crc64(), "count": 0, "opened": False, "ended": False}
        self._out.write(TERMINATOR)

    def _ns_state(self, db: str, collection: str) -> tuple[str, dict]:
        ns = f"{db}.{collection}"
        state = self._state.get(ns)
        if state is None:
            raise ArchiveError(f"collection {ns} is not in the prelude")
        if state["ended"]:
            raise ArchiveError(f"collection {ns} is finished already")
        return ns, state

    def _namespace_header(self, db: str, collection: str, eof: bool, crc: int) -> bytes:
        return bson.encode(SON([("db", db), ("collection", collection), ("EOF", eof),
                                ("CRC", Int64(_to_int64(crc)))]))

    def write_documents(self, db: str, collection: str, docs: Iterable[bytes]) -> int:
        """Append raw BSON documents to the collection (opening a segment if needed); how many."""
        ns, state = self._ns_state(db, collection)
        if self._segment != ns:
            if self._segment is not None:
                self._out.write(TERMINATOR)
            self._out.write(self._namespace_header(db, collection, False, 0))
            self._segment = ns
            state["opened"] = True
        count = 0
        crc = state["crc"]
        write = self._out.write
        # Documents go out in chunks of about WRITE_CHUNK bytes: one CRC update and one (compressed) write
        # per chunk instead of per document. The bytes written are the same.
        chunk: list[bytes] = []
        size = 0
        for raw in docs:
            raw = bytes(raw)
            _check_document(raw)
            chunk.append(raw)
            size += len(raw)
            count += 1
            if size >= WRITE_CHUNK:
                data = b"".join(chunk)
                write(data)
                crc.update(data)
                chunk, size = [], 0
        if chunk:
            data = b"".join(chunk)
            write(data)
            crc.update(data)
        state["count"] += count
        return count

    def end_collection(self, db: str, collection: str) -> tuple[int, int]:
        """Close the collection with its end block; returns (document count, CRC)."""
        _ns, state = self._ns_state(db, collection)
        if not state["opened"]:
            self.write_documents(db, collection, ())
        if self._segment is not None:
            self._out.write(TERMINATOR)
            self._segment = None
        self._out.write(self._namespace_header(db, collection, True, state["crc"].value))
        self._out.write(TERMINATOR)
        state["ended"] = True
        return state["count"], state["crc"].value

    def write_collection(self, db: str, collection: str, docs: Iterable[bytes]) -> tuple[int, int]:
        self.write_documents(db, collection, docs)
        return self.end_collection(db, collection)

    def close(self) -> None:
        if self._closed:
            return
        unfinished = [ns for ns in self._announced if not self._state[ns]["ended"]]
        if unfinished:
            raise ArchiveError(f"collections announced but not written: {', '.join(unfinished)}")
        if not self._announced and not self._state:
            self.write_prelude(())
        if self._gzip is not None:
            self._gzip.close()
        self._file.flush()
        self._closed = True


# ---------------------------------------------------------------------------------------------
# Reader


class _Prefixed(io.RawIOBase):
    """A forward-only stream that first returns bytes already read from another one."""

    def __init__(self, prefix: bytes, stream) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Spool:
    """Documents of a collection that arrived before its turn (interleaved segments)."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed by drain()
        self.ended = False

    def add(self, raw: bytes) -> None:
        self.file.write(raw)

    def drain(self) -> Iterator[bytes]:
        self.file.seek(0)
        while True:
            prefix = self.file.read(4)
            if not prefix:
                break
            size = _INT32.unpack(prefix)[0]
            yield prefix + self.file.read(size - 4)
        self.file.close()


class ArchiveReader:
    """Reads an archive (gzip-compressed or not: detected from the first bytes) from a binary stream.

    The prelude is read on construction: `header` and `collections` (CollectionEntry list). Then
    iterate over collections(), in the order of the data; each item's `docs` must be consumed
    before the next item is asked for (unconsumed documents are skipped, still CRC-checked).
    Every problem raises ArchiveError; the CRC of a collection is checked when its end block is
    read, i.e. when its docs iterator finishes.
    """

    def __init__(self, fileobj, *, verify_crc: bool = True) -> None:
        _require_bson()
        self.verify_crc = verify_crc
        self._buf, self._pos = b"", 0
        start = self._raw_read(fileobj, 4)
        self.compressed = start[:2] == GZIP_MAGIC
        if self.compressed:
            self._in = gzip.GzipFile(fileobj=io.BufferedReader(_Prefixed(start, fileobj)), mode="rb")
            magic = self._read_exact(4, "the magic number")
        else:
            self._in = fileobj
            magic = start
        if magic != MAGIC:
            raise ArchiveError("not a mongodump archive (bad magic number"
                               f" {magic.hex() or 'missing: empty stream'})")
        header = self._read_item("the archive header")
        if header is None:
            raise ArchiveError("corrupt archive: the header is missing")
        self.header = self._decode(header, "the archive header")
        if self.header.get("version") != FORMAT_VERSION:
            raise ArchiveError(f"unsupported archive format version {self.header.get('version')!r}"
                               f" (expected {FORMAT_VERSION!r})")
        self.collections: list[CollectionEntry] = []
        self._entries: dict[str, CollectionEntry] = {}
        while True:
            item = self._read_item("the collection list")
            if item is None:
                break
            doc = self._decode(item, "a collection entry of the prelude")
            db, name = doc.get("db"), doc.get("collection")
            if not isinstance(db, str) or not isinstance(name, str) or not name:
                raise ArchiveError("corrupt archive: a prelude entry lacks db or collection")
            entry = CollectionEntry(db, name, parse_metadata(doc.get("metadata") or ""),
                                    doc.get("type") or "collection", int(doc.get("size") or 0))
            if entry.namespace in self._entries:
                raise ArchiveError(f"corrupt archive: collection {entry.namespace} is listed twice")
            self._entries[entry.namespace] = entry
            self.collections.append(entry)
        self._iterating = False

    @property
    def server_version(self) -> str:
        return str(self.header.get("server_version", ""))

    @property
    def tool_version(self) -> str:
        return str(self.header.get("tool_version", ""))

    # -- low level

    @staticmethod
    def _raw_read(stream, size: int) -> bytes:
        chunks = []
        while size > 0:
            chunk = stream.read(size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read_exact(self, size: int, what: str, allow_eof: bool = False) -> bytes:
        # The decompressed stream is read in chunks of READ_CHUNK bytes, documents are cut from the chunk.
        pos = self._pos
        end = pos + size
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        have = len(parts[0])
        try:
            while have < size:
                chunk = self._in.read(max(READ_CHUNK, size - have))
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
        except EOFError:
            raise ArchiveError(f"truncated archive: the compressed stream ends inside {what}") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise ArchiveError(f"corrupt archive: gzip error in {what}: {exc}") from None
        data = b"".join(parts)
        if have < size:
            self._buf, self._pos = b"", 0
            if allow_eof and not data:
                return b""
            raise ArchiveError(f"truncated archive: the stream ends inside {what}")
        self._buf, self._pos = data, size
        return data[:size]

    def _read_item(self, what: str, allow_eof: bool = False) -> bytes | bool | None:
        """The next BSON document, None for a terminator, False for a clean end (when allowed)."""
        prefix = self._read_exact(4, what, allow_eof=allow_eof)
        if not prefix:
            return False
        if prefix == TERMINATOR:
            return None
        size = _UINT32.unpack(prefix)[0]
        if size < 5 or size > MAX_BSON_SIZE:
            raise ArchiveError(f"corrupt archive: {size} is neither a BSON length nor a terminator "
                               f"(in {what})")
        raw = prefix + self._read_exact(size - 4, what)
        if raw[-1] != 0:
            raise ArchiveError(f"corrupt archive: a BSON document in {what} does not end with NUL")
        return raw

    @staticmethod
    def _decode(raw: bytes, what: str) -> dict:
        try:
            return bson.decode(raw)
        except (InvalidBSON, ValueError, TypeError) as exc:
            raise ArchiveError(f"corrupt archive: {what} is not valid BSON: {exc}") from None

    def _namespace_header(self, raw: bytes) -> tuple[str, bool, int]:
        doc = self._decode(raw, "a collection header")
        db, name, eof, crc = doc.get("db"), doc.get("collection"), doc.get("EOF"), doc.get("CRC")
        if (not isinstance(db, str) or not isinstance(name, str) or not name or not isinstance(eof, bool)
                or not isinstance(crc, int) or set(doc) - {"db", "collection", "EOF", "CRC"}):
            raise ArchiveError(f"corrupt archive: invalid collection header {sorted(doc)}")
        ns = f"{db}.{name}"
        if ns not in self._entries:
            raise ArchiveError(f"corrupt archive: data for {ns}, which the prelude does not list")
        return ns, eof, crc & _MASK64

    def events(self) -> Iterator[tuple]:
        """("open", ns) / ("doc", ns, raw) / ("end", ns, count) in stream order; validates it all."""
        status: dict[str, str] = {}
        crcs: dict[str, Crc64] = {}
        counts: dict[str, int] = {}
        while True:
            item = self._read_item("a collection block", allow_eof=True)
            if item is False:
                break
            if item is None:
                raise ArchiveError("corrupt archive: a block without a collection header")
            ns, eof, crc = self._namespace_header(item)
            if status.get(ns) == "ended":
                raise ArchiveError(f"corrupt archive: {ns} has data after its end block")
            if ns not in status:
                status[ns] = "open"
                crcs[ns] = Crc64()
                counts[ns] = 0
                yield ("open", ns)
            if eof:
                if self._read_item(f"the end block of {ns}") is not None:
                    raise ArchiveError(f"corrupt archive: the end block of {ns} holds data")
                if self.verify_crc and crcs[ns].value != crc:
                    raise ArchiveError(f"CRC mismatch for {ns}: the archive says {crc:016x}, its "
                                       f"documents give {crcs[ns].value:016x} (corrupt archive)")
                status[ns] = "ended"
                yield ("end", ns, counts[ns])
                continue
            if crc:
                raise ArchiveError(f"corrupt archive: a data segment header of {ns} has a CRC")
            crc_of = crcs[ns] if self.verify_crc else None
            while True:
                raw = self._read_item(f"the data of {ns}")
                if raw is None:
                    break
                if crc_of is not None:
                    crc_of.update(raw)
                counts[ns] += 1
                yield ("doc", ns, raw)
        unfinished = sorted(ns for ns, state in status.items() if state != "ended")
        if unfinished:
            raise ArchiveError(f"truncated archive: no end block for {', '.join(unfinished)}")
        unseen = [entry.namespace for entry in self.collections if entry.namespace not in status]
        if unseen:
            raise ArchiveError(f"truncated archive: no data block for {', '.join(unseen)}")
        self.finish()

    def finish(self) -> None:
        """Check that nothing follows the archive (the gzip trailer is checked by reading to its end)."""
        if self._read_exact(1, "the end of the archive", allow_eof=True):
            raise ArchiveError("corrupt archive: data after the last block")

    def collections_data(self) -> Iterator[ArchiveCollection]:
        """Each collection with its documents, in the order the data comes in."""
        if self._iterating:
            raise ArchiveError("an archive can be iterated once")
        self._iterating = True
        events = self.events()
        waiting: dict[str, _Spool] = {}  # collections seen in the stream and not yielded yet

        def absorb(event: tuple) -> None:
            kind, ns = event[0], event[1]
            if kind == "open":
                waiting[ns] = _Spool()
            elif kind == "doc":
                waiting[ns].add(event[2])
            else:
                waiting[ns].ended = True

        def docs_of(ns: str, spool: _Spool) -> Iterator[bytes]:
            yield from spool.drain()
            if spool.ended:
                return
            for event in events:
                if event[1] != ns:
                    absorb(event)
                elif event[0] == "doc":
                    yield event[2]
                elif event[0] == "end":
                    return
            raise ArchiveError(f"truncated archive: {ns} has no end block")  # pragma: no cover

        while True:
            if not waiting:
                event = next(events, None)
                if event is None:
                    break
                absorb(event)
                continue
            ns = next(iter(waiting), None)  # waiting is not empty here
            spool = waiting.pop(ns)
            entry = self._entries[ns]
            docs = docs_of(ns, spool)
            yield ArchiveCollection(entry.db, entry.collection, entry.metadata, docs)
            for _skipped in docs:  # skip what the consumer left
                pass

    __iter__ = collections_data


def open_archive(path: str, *, verify_crc: bool = True):
    """(file, ArchiveReader) for a path; the caller closes the file."""
    handle = open(path, "rb")  # noqa: SIM115 - returned to the caller
    try:
        return handle, ArchiveReader(handle, verify_crc=verify_crc)
    except BaseException:
        handle.close()
        raise


def document_id(raw: bytes):
    """The decoded _id of a raw BSON document (None when it has none)."""
    return _decode_id(raw)


def _decode_id(raw: bytes):
    # _id is almost always the first element: decode just that element when it is.
    if len(raw) > 8 and raw[5:9] == b"_id\x00":
        end = _element_end(raw, 4)
        if end is not None:
            one = _INT32.pack(end - 4 + 5) + raw[4:end] + b"\x00"
            try:
                return bson.decode(one, _ID_OPTIONS).get("_id")
            except (InvalidBSON, ValueError, TypeError):
                pass
    try:
        return bson.decode(raw, _ID_OPTIONS).get("_id")
    except (InvalidBSON, ValueError, TypeError) as exc:
        raise ArchiveError(f"a document is not valid BSON: {exc}") from None


_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def _element_end(raw: bytes, pos: int) -> int | None:
    """Offset just after the element starting at pos, or None for types not handled here."""
    kind = raw[pos]
    name_end = raw.index(b"\x00", pos + 1)
    value = name_end + 1
    if kind in _FIXED:
        return value + _FIXED[kind]
    if kind in (0x02, 0x0D, 0x0E):  # string, code, symbol
        return value + 4 + _INT32.unpack_from(raw, value)[0]
    if kind in (0x03, 0x04):  # document, array
        return value + _INT32.unpack_from(raw, value)[0]
    if kind == 0x05:  # binary
        return value + 5 + _INT32.unpack_from(raw, value)[0]
    return None


if HAS_BSON:
    from bson.codec_options import CodecOptions, DatetimeConversion

    _ID_OPTIONS = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS)
else:  # pragma: no cover
    _ID_OPTIONS = None


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "ArchiveCollection",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "CollectionEntry",
    "Crc64",
    "crc64",
    "document_id",
    "metadata_json",
    "open_archive",
    "parse_metadata",
]
