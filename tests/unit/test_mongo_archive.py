"""The mongodump archive format: layout, CRC, compression, round trips, corruption detection.

No server and no MongoDB tools are needed: REAL_ARCHIVE below is what mongodump (mongo-tools 100.x,
`--archive --numParallelCollections=1`, without --gzip) wrote for a small FerretDB database, and the
writer must reproduce it byte for byte.
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import os
import random

import bson
import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import (
    CRC_IMPLEMENTATION,
    MAGIC,
    TERMINATOR,
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    CollectionEntry,
    Crc64,
    crc64,
    crc64_c,
    crc64_python,
    document_id,
    metadata_json,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    BackupError,
    build_manifest,
    check,
    load_manifest,
    manifest_path_for,
    resolve_engine,
    run_tool,
    write_json_atomic,
)
from bson import SON, Int64, ObjectId

REAL_ARCHIVE = bytes.fromhex(
    "6de299817c00000010636f6e63757272656e745f636f6c6c656374696f6e7300010000000276657273696f6e000400000030"
    "2e3100027365727665725f76657273696f6e0007000000372e302e34320002746f6f6c5f76657273696f6e001d0000006275"
    "696c742d776974686f75742d76657273696f6e2d737472696e67000002010000026462000500000074696e790002636f6c6c"
    "656374696f6e0006000000656d70747900026d6574616461746100ad0000007b22696e6465786573223a5b7b2276223a7b22"
    "246e756d626572496e74223a2232227d2c226b6579223a7b225f6964223a7b22246e756d626572496e74223a2231227d7d2c"
    "226e616d65223a225f69645f227d5d2c2275756964223a226533363966613466323736343434666139623538396365396663"
    "326461386663222c22636f6c6c656374696f6e4e616d65223a22656d707479222c2274797065223a22636f6c6c656374696f"
    "6e227d001073697a6500000000000274797065000b000000636f6c6c656374696f6e00005b01000002646200050000007469"
    "6e790002636f6c6c656374696f6e00060000006e6f74657300026d6574616461746100060100007b22696e6465786573223a"
    "5b7b2276223a7b22246e756d626572496e74223a2232227d2c226b6579223a7b225f6964223a7b22246e756d626572496e74"
    "223a2231227d7d2c226e616d65223a225f69645f227d2c7b2276223a7b22246e756d626572496e74223a2232227d2c226b65"
    "79223a7b2274657874223a7b22246e756d626572496e74223a2231227d7d2c226e616d65223a22746578745f31222c22756e"
    "69717565223a747275657d5d2c2275756964223a223538376536636431653036313466316561386261356432383162326466"
    "343236222c22636f6c6c656374696f6e4e616d65223a226e6f746573222c2274797065223a22636f6c6c656374696f6e227d"
    "001073697a6500000000000274797065000b000000636f6c6c656374696f6e0000ffffffff3b000000026462000500000074"
    "696e790002636f6c6c656374696f6e0006000000656d7074790008454f4600001243524300000000000000000000ffffffff"
    "3b000000026462000500000074696e790002636f6c6c656374696f6e0006000000656d7074790008454f4600011243524300"
    "000000000000000000ffffffff3b000000026462000500000074696e790002636f6c6c656374696f6e00060000006e6f7465"
    "730008454f460000124352430000000000000000000035000000075f69640065a00000000000000000000202746578740009"
    "0000007a77656920e29c930009617400005078c78c0100000042000000075f69640065a00000000000000000000102746578"
    "74000500000065696e7300047461677300170000000230000200000061000231000200000062000000ffffffff3b00000002"
    "6462000500000074696e790002636f6c6c656374696f6e00060000006e6f7465730008454f460001124352430008a8d7ee17"
    "c6011e00ffffffff"
)
REAL_EMPTY_METADATA = ('{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],'
                       '"uuid":"e369fa4f276444fa9b589ce9fc2da8fc","collectionName":"empty","type":"collection"}')
REAL_NOTES_CRC = 0x1E01C617EED7A808


def _index(name, *key, **options):
    return SON([("v", 2), ("key", SON(key)), ("name", name), *options.items()])


def _docs(n, start=0):
    return [bson.encode(SON([("_id", i), ("text", f"message {i} ✓"), ("at", datetime.datetime(2024, 1, 1)),
                             ("meta", {"tags": ["a", "b"], "n": i})]))
            for i in range(start, start + n)]


def _archive(collections, compress=True, database="chatbot"):
    """Bytes of an archive with {name: [raw docs]}, written collection after collection."""
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7.0.0", tool_version="test", compress=compress)
    writer.write_prelude(CollectionEntry(database, name, {"indexes": [_index("_id_", ("_id", 1))]})
                         for name in collections)
    for name, docs in collections.items():
        writer.write_collection(database, name, docs)
    writer.close()
    return out.getvalue()


def _end_block(db, name, docs):
    crc = crc64(b"".join(docs))
    return bson.encode(SON([("db", db), ("collection", name), ("EOF", True),
                            ("CRC", Int64(crc - 2**64 if crc >= 2**63 else crc))]))


def _read_all(data, **kwargs):
    reader = ArchiveReader(io.BytesIO(data), **kwargs)
    return reader, [(db, name, metadata, list(docs)) for db, name, metadata, docs in reader]


# -- CRC ----------------------------------------------------------------------------------------


def test_crc64_is_go_crc64_ecma():
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA  # CRC-64/XZ check value
    assert crc64(b"") == 0


def test_crc64_incremental_equals_one_shot_at_every_alignment():
    data = os.urandom(1000)
    for cut in (0, 1, 7, 8, 9, 500, 999):
        crc = Crc64()
        crc.update(data[:cut])
        crc.update(data[cut:])
        assert crc.value == crc64(data)


def test_c_and_python_crc_paths_agree():
    """crcmod-plus (C) and the pure-Python fallback give the same CRC, one-shot and continued at any cut."""
    pytest.importorskip("crcmod")  # a dependency of the project (pyproject.toml): installed where tests run
    assert CRC_IMPLEMENTATION == "crcmod"
    rng = random.Random(64)  # noqa: S311 - reproducible data, not cryptography
    for size in (0, 1, 7, 8, 9, 63, 64, 65, 4096, 100_003):
        data = rng.randbytes(size)
        assert crc64_c(data) == crc64_python(data) == crc64(data, "python") == crc64(data, "crcmod")
        for cut in {0, size // 3, size // 2, size}:
            assert crc64_c(data[cut:], crc64_c(data[:cut])) == crc64_python(data)
            assert crc64_python(data[cut:], crc64_python(data[:cut])) == crc64_c(data)
    assert crc64_c(memoryview(b"123456789")) == crc64_python(bytearray(b"123456789")) == 0x995DC9BBDF1939FA
    with pytest.raises(ValueError, match="unknown CRC"):
        Crc64("zlib")


def test_archives_read_the_same_with_either_crc_path(monkeypatch):
    """An archive written with one CRC implementation reads back with the other (and a flip is caught by both)."""
    pytest.importorskip("crcmod")
    from ansible_collections.chatbot.rollback.plugins.module_utils import mongo_archive

    data = _archive({"users": _docs(50)})
    monkeypatch.setattr(mongo_archive, "_crc64_update", mongo_archive.crc64_python)
    python_written = _archive({"users": _docs(50)})
    assert python_written == data
    _reader, collections = _read_all(data)
    assert len(collections[0][3]) == 50
    raw = bytearray(gzip.decompress(data))
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(ArchiveError, match=r"CRC mismatch|corrupt"):
        _read_all(bytes(raw))
    monkeypatch.undo()
    with pytest.raises(ArchiveError, match=r"CRC mismatch|corrupt"):
        _read_all(bytes(raw))


# -- The real mongodump archive -----------------------------------------------------------------


def test_reads_a_real_mongodump_archive():
    reader, collections = _read_all(REAL_ARCHIVE)
    assert reader.header["version"] == "0.1"
    assert reader.server_version == "7.0.42"
    assert [(e.db, e.collection, e.type) for e in reader.collections] == [("tiny", "empty", "collection"),
                                                                          ("tiny", "notes", "collection")]
    assert [(db, name, len(docs)) for db, name, _meta, docs in collections] == [("tiny", "empty", 0),
                                                                                 ("tiny", "notes", 2)]
    notes_meta = collections[1][2]
    assert notes_meta["collectionName"] == "notes"
    assert [ix["name"] for ix in notes_meta["indexes"]] == ["_id_", "text_1"]
    assert notes_meta["indexes"][1]["unique"] is True
    docs = [bson.decode(raw) for raw in collections[1][3]]
    assert [d["text"] for d in docs] == ["zwei ✓", "eins"]  # natural order, not _id order
    assert crc64(b"".join(collections[1][3])) == REAL_NOTES_CRC


def test_writer_reproduces_the_real_mongodump_archive_byte_for_byte():
    reader, collections = _read_all(REAL_ARCHIVE)
    raw_entries = []
    # The prelude keeps mongodump's metadata text as is when given a string.
    data = REAL_ARCHIVE
    texts = []
    pos = len(MAGIC) + int.from_bytes(data[4:8], "little")
    while data[pos:pos + 4] != TERMINATOR:
        size = int.from_bytes(data[pos:pos + 4], "little")
        texts.append(bson.decode(data[pos:pos + size])["metadata"])
        pos += size
    assert texts[0] == REAL_EMPTY_METADATA
    for entry, text in zip(reader.collections, texts, strict=True):
        raw_entries.append(CollectionEntry(entry.db, entry.collection, text))
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7.0.42", tool_version="built-without-version-string",
                           compress=False)
    writer.write_prelude(raw_entries)
    for db, name, _meta, docs in collections:
        writer.write_collection(db, name, docs)
    writer.close()
    assert out.getvalue() == REAL_ARCHIVE


def test_metadata_json_matches_mongodump_text():
    parsed = json.loads(REAL_EMPTY_METADATA)
    assert metadata_json("empty", [_index("_id_", ("_id", 1))], uuid=parsed["uuid"]) == REAL_EMPTY_METADATA
    capped = metadata_json("c", [], options=SON([("capped", True), ("size", Int64(4096))]))
    assert capped == ('{"options":{"capped":true,"size":{"$numberLong":"4096"}},"indexes":[],'
                      '"collectionName":"c","type":"collection"}')


# -- Layout and compression ---------------------------------------------------------------------


def test_gzip_wraps_the_whole_stream_in_one_member():
    plain = _archive({"a": _docs(3), "b": []}, compress=False)
    packed = _archive({"a": _docs(3), "b": []}, compress=True)
    assert plain.startswith(MAGIC)
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == plain
    # One member: the uncompressed size in the trailer covers the whole archive.
    assert int.from_bytes(packed[-4:], "little") == len(plain)


def test_empty_collection_has_an_empty_segment_then_its_end_block():
    plain = _archive({"empty": []}, compress=False)
    body = plain[plain.index(TERMINATOR) + 4:]
    header = bson.decode(body[:int.from_bytes(body[:4], "little")])
    assert header == {"db": "chatbot", "collection": "empty", "EOF": False, "CRC": 0}
    first = int.from_bytes(body[:4], "little")
    assert body[first:first + 4] == TERMINATOR
    rest = body[first + 4:]
    end = bson.decode(rest[:int.from_bytes(rest[:4], "little")])
    assert end == {"db": "chatbot", "collection": "empty", "EOF": True, "CRC": 0}
    assert rest.endswith(TERMINATOR) and len(rest) == int.from_bytes(rest[:4], "little") + 4


def test_crc_is_stored_as_int64_with_the_same_bits():
    # REAL_ARCHIVE's CRC has its top bit clear: take documents whose CRC has it set (a negative int64).
    docs = next(d for d in (_docs(n) for n in range(1, 100)) if crc64(b"".join(d)) >= 2**63)
    plain = _archive({"a": docs}, compress=False)
    assert plain.endswith(TERMINATOR + _end_block("chatbot", "a", docs) + TERMINATOR)
    stored = bson.decode(_end_block("chatbot", "a", docs))["CRC"]
    assert stored < 0
    assert stored & (2**64 - 1) == crc64(b"".join(docs))
    _read_all(plain)


# -- Round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_keeps_documents_metadata_and_order(compress):
    indexes = [_index("_id_", ("_id", 1)), _index("email_1", ("email", 1), unique=True),
               _index("at_-1_text_1", ("at", -1), ("text", 1))]
    capped = {"indexes": [], "options": {"capped": True, "size": Int64(8192)}}
    entries = [CollectionEntry("chatbot", "users", {"indexes": indexes, "uuid": "00" * 16}),
               CollectionEntry("chatbot", "capped", capped),
               CollectionEntry("chatbot", "empty", {"indexes": []})]
    users = [bson.encode({"_id": ObjectId(), "email": f"u{i}@example.org", "name": "Zoë", "n": {"x": [1, 2]}})
             for i in range(50)]
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7.0.42", tool_version="t 1", compress=compress)
    writer.write_prelude(entries)
    assert writer.write_collection("chatbot", "users", users) == (50, crc64(b"".join(users)))
    writer.write_collection("chatbot", "capped", _docs(2))
    writer.write_collection("chatbot", "empty", iter(()))
    writer.close()

    reader, collections = _read_all(out.getvalue())
    assert reader.compressed is compress
    assert reader.tool_version == "t 1"
    assert [c[1] for c in collections] == ["users", "capped", "empty"]
    assert collections[0][3] == users
    assert collections[0][2]["indexes"] == [dict(ix) for ix in indexes]
    assert collections[0][2]["uuid"] == "00" * 16
    assert collections[1][2]["options"] == {"capped": True, "size": 8192}
    assert isinstance(collections[1][2]["options"]["size"], Int64)
    assert collections[2][3] == []


def test_interleaved_segments_are_regrouped_per_collection():
    a1, b1, a2 = _docs(3), _docs(2, start=100), _docs(2, start=10)
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7", tool_version="t", compress=False)
    writer.write_prelude([CollectionEntry("d", "a", {"indexes": []}),
                          CollectionEntry("d", "b", {"indexes": []})])
    writer.write_documents("d", "a", a1)
    writer.write_documents("d", "b", b1)
    writer.write_documents("d", "a", a2)
    writer.end_collection("d", "b")
    writer.end_collection("d", "a")
    writer.close()
    data = out.getvalue()
    assert data.count(b"\x08EOF\x00\x00") == 3  # three segments

    _reader, collections = _read_all(data)
    assert [(c[1], c[3]) for c in collections] == [("a", a1 + a2), ("b", b1)]


def test_unconsumed_documents_are_skipped_and_still_checked():
    data = _archive({"a": _docs(4), "b": _docs(1)})
    reader = ArchiveReader(io.BytesIO(data))
    names = [name for _db, name, _meta, _docs_iter in reader]
    assert names == ["a", "b"]
    with pytest.raises(ArchiveError, match="once"):
        list(reader)


def test_document_id_reads_the_first_element_or_the_whole_document():
    oid = ObjectId()
    assert document_id(bson.encode({"_id": oid, "x": 1})) == oid
    assert document_id(bson.encode({"x": 1, "_id": "late"})) == "late"
    assert document_id(bson.encode({"_id": {"a": 1, "b": [1]}})) == {"a": 1, "b": [1]}
    assert document_id(bson.encode({"x": 1})) is None


# -- Corruption -----------------------------------------------------------------------------------


def test_bad_magic_is_refused():
    with pytest.raises(ArchiveError, match="bad magic"):
        ArchiveReader(io.BytesIO(b"\x00\x01\x02\x03" + bytes(100)))
    with pytest.raises(ArchiveError, match="bad magic"):
        ArchiveReader(io.BytesIO(gzip.compress(b"not an archive at all")))
    with pytest.raises(ArchiveError, match="empty stream"):
        ArchiveReader(io.BytesIO(b""))


def test_flipped_byte_in_a_document_is_a_crc_mismatch():
    plain = bytearray(_archive({"a": _docs(5)}, compress=False))
    where = plain.index(b"message 3")
    plain[where] ^= 0x01
    with pytest.raises(ArchiveError, match=r"CRC mismatch for chatbot\.a"):
        _read_all(bytes(plain))
    # Without CRC checks the same bytes read (this is what the CRC is for).
    _read_all(bytes(plain), verify_crc=False)


def test_flipped_byte_in_the_compressed_stream_is_detected():
    packed = _archive({"a": _docs(50), "b": _docs(3)})
    rng = random.Random(7)  # noqa: S311 - reproducible positions, not cryptography
    for _ in range(25):
        data = bytearray(packed)
        data[rng.randrange(10, len(data) - 8)] ^= 1 << rng.randrange(8)
        with pytest.raises(ArchiveError):
            _read_all(bytes(data))


@pytest.mark.parametrize("compress", [True, False])
def test_truncation_anywhere_is_detected(compress):
    data = _archive({"a": _docs(20), "b": [], "c": _docs(2)}, compress=compress)
    size = len(data)
    for cut in sorted({1, 3, 4, 10, size // 3, size // 2, size - 9, size - 4, size - 1}):
        with pytest.raises(ArchiveError, match=r"truncated|bad magic|corrupt"):
            _read_all(data[:cut])


def test_truncation_at_a_block_boundary_names_the_unfinished_collection():
    plain = _archive({"a": _docs(3), "b": _docs(2)}, compress=False)
    with pytest.raises(ArchiveError, match=r"truncated archive: the stream ends inside the data of chatbot"):
        _read_all(plain[:plain.index(_docs(3)[1])])
    with pytest.raises(ArchiveError, match=r"truncated archive: no end block for chatbot\.a"):
        _read_all(plain[:plain.index(_end_block("chatbot", "a", _docs(3)))])


def test_missing_collection_data_and_trailing_garbage_are_errors():
    plain = _archive({"a": _docs(1)}, compress=False)
    with pytest.raises(ArchiveError, match=r"data after the last block|neither a BSON length"):
        _read_all(plain + b"junk")
    with pytest.raises(ArchiveError, match="corrupt"):
        _read_all(gzip.compress(plain) + b"junk")
    # A prelude that announces b, but no block of b.
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7", tool_version="t", compress=False)
    writer.write_prelude([CollectionEntry("d", "a", {"indexes": []})])
    writer.write_collection("d", "a", _docs(1))
    writer.close()
    data = out.getvalue()
    announced = bson.encode(SON([("db", "d"), ("collection", "b"), ("metadata", ""), ("size", 0),
                                 ("type", "collection")]))
    prelude_end = data.index(TERMINATOR)
    with pytest.raises(ArchiveError, match=r"no data block for d\.b"):
        _read_all(data[:prelude_end] + announced + data[prelude_end:])


def test_data_for_an_unannounced_collection_is_an_error():
    plain = _archive({"a": _docs(1)}, compress=False)
    prelude_end = plain.index(TERMINATOR) + 4
    tampered = plain[:prelude_end] + plain[prelude_end:].replace(b"collection\x00\x02\x00\x00\x00a\x00",
                                                                 b"collection\x00\x02\x00\x00\x00z\x00")
    with pytest.raises(ArchiveError, match="does not list"):
        _read_all(tampered)


def test_writer_refuses_misuse():
    writer = ArchiveWriter(io.BytesIO(), server_version="7", tool_version="t")
    writer.write_prelude([CollectionEntry("d", "a", {"indexes": []})])
    with pytest.raises(ArchiveError, match="not in the prelude"):
        writer.write_collection("d", "b", [])
    with pytest.raises(ArchiveError, match="not a BSON document"):
        writer.write_collection("d", "a", [b"\x05\x00\x00\x00\x01"])
    with pytest.raises(ArchiveError, match="not written"):
        writer.close()


# -- Backup files (no server needed) --------------------------------------------------------------


def _backup(tmp_path, collections=None):
    archive = tmp_path / "pre-v1.archive.gz"
    archive.write_bytes(_archive(collections or {"users": _docs(10), "empty": []}, database="chatbot"))
    manifest = build_manifest(str(archive), engine="pymongo", database="chatbot", release="v1",
                              labels={"why": "test"})
    path = manifest_path_for(str(archive))
    write_json_atomic(path, manifest)
    return archive, path


def test_manifest_is_built_from_the_archive(tmp_path):
    archive, path = _backup(tmp_path)
    assert path.endswith("pre-v1.manifest.json")
    manifest = load_manifest(path)
    assert manifest["archive"] == "pre-v1.archive.gz"
    assert manifest["size"] == archive.stat().st_size
    assert manifest["collections"]["users"]["count"] == 10
    assert manifest["collections"]["empty"]["count"] == 0
    assert manifest["release"] == "v1" and manifest["labels"] == {"why": "test"}
    assert manifest["created_at"].endswith("+00:00")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert check(path) == []


def test_manifest_from_the_bytes_written_must_match_the_file(tmp_path):
    archive, path = _backup(tmp_path)
    manifest = load_manifest(path)
    written = {"sha256": manifest["sha256"], "size": manifest["size"],
               "facts": {"database": "chatbot", "server_version": "7.0", "tool_version": "t",
                         "collections": manifest["collections"]}}
    again = build_manifest(str(archive), engine="pymongo", database="chatbot", written=written)
    assert again["collections"] == manifest["collections"] and again["sha256"] == manifest["sha256"]
    with pytest.raises(BackupError, match="is not what was written"):
        build_manifest(str(archive), engine="pymongo", database="chatbot", written={**written, "sha256": "0" * 64})


def test_check_without_content_compares_size_and_sha256_only(tmp_path):
    archive, path = _backup(tmp_path)
    assert check(path, content=False) == []
    manifest = load_manifest(path)
    # A manifest whose facts lie but whose sha256 is right passes the quick check, not the full one.
    manifest["collections"]["users"]["count"] = 11
    write_json_atomic(path, manifest)
    assert check(path, content=False) == []
    assert any("11" in problem for problem in check(path))
    good = archive.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    assert any("tampered or corrupt" in p for p in check(path, content=False))
    archive.write_bytes(good[:-1])
    assert any("bytes, the manifest says" in p for p in check(path, content=False))


def test_check_reports_tampering_truncation_and_missing_files(tmp_path):
    archive, path = _backup(tmp_path)
    good = archive.read_bytes()

    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    problems = check(path)
    assert any("tampered or corrupt" in p for p in problems), problems

    archive.write_bytes(good[:-20])
    problems = check(path)
    assert any("bytes, the manifest says" in p for p in problems)
    assert any("truncated" in p for p in problems), problems

    archive.unlink()
    assert check(path) == [f"archive {archive} is missing"]
    nope = tmp_path / "nope.manifest.json"
    assert check(str(nope)) == [f"manifest {nope} is missing"]


def test_check_reports_a_manifest_that_does_not_match_the_archive(tmp_path):
    _archive_path, path = _backup(tmp_path)
    manifest = load_manifest(path)
    manifest["collections"]["users"]["count"] = 11
    manifest["collections"]["users"]["content_sha256"] = "0" * 64
    write_json_atomic(path, manifest)
    problems = check(path)
    assert "collection 'users': 10 documents, expected 11" in " ".join(problems)
    assert "content differs" in " ".join(problems)


def test_manifest_path_naming():
    assert manifest_path_for("/b/x.archive.gz") == "/b/x.manifest.json"
    assert manifest_path_for("/b/x.gz") == "/b/x.gz.manifest.json"


# -- Running the MongoDB tools (a fake one: no tools needed) --------------------------------------

FAKE_TOOL = """#!/bin/sh
out="$FAKE_TOOL_OUT"
printf '%s\\n' "$@" > "$out.argv"
for arg in "$@"; do
  case "$arg" in --config=*) cfg="${arg#--config=}";; esac
done
stat -c '%a' "$cfg" > "$out.mode"
cat "$cfg" > "$out.config"
echo "connected to $(cat "$cfg")" >&2
exit "${FAKE_TOOL_RC:-0}"
"""


def test_run_tool_passes_the_uri_in_a_private_config_file(tmp_path, monkeypatch):
    tool = tmp_path / "mongodump"
    tool.write_text(FAKE_TOOL)
    tool.chmod(0o755)
    out = tmp_path / "out"
    monkeypatch.setenv("FAKE_TOOL_OUT", str(out))
    uri = "mongodb://chatbot:Sekr3t-%2Fpw@127.0.0.1:27017/?authSource=chatbot"
    output = run_tool(str(tool), ["--archive=x", "--gzip"], uri)
    argv = (tmp_path / "out.argv").read_text()
    assert "Sekr3t" not in argv and "--archive=x" in argv
    assert (tmp_path / "out.mode").read_text().strip() == "600"
    assert (tmp_path / "out.config").read_text() == f'uri: "{uri}"\n'
    config = next(line for line in argv.splitlines() if line.startswith("--config="))[len("--config="):]
    assert not os.path.exists(config), "the config file with the URI was left behind"
    assert "Sekr3t" not in output and "chatbot:***@" in output

    monkeypatch.setenv("FAKE_TOOL_RC", "3")
    with pytest.raises(BackupError, match=r"mongodump failed \(rc=3\)") as exc:
        run_tool(str(tool), [], uri)
    assert "Sekr3t" not in str(exc.value)


def test_engine_resolution(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert resolve_engine("auto", "mongodump") == ("pymongo", None)
    assert resolve_engine("pymongo", "mongodump") == ("pymongo", None)
    with pytest.raises(BackupError, match="not on PATH"):
        resolve_engine("mongodump", "mongodump")
