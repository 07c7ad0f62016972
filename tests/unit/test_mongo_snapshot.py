"""Snapshot facts without a server: _id order, content hashes, index normalization, compare(), URIs."""

from __future__ import annotations

import datetime
import hashlib
import io
import math
import random

import bson
import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    CollectionEntry,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    database_name,
    mongo_argument_spec,
    redact_uri,
    scrub,
    uri_hosts,
    uri_password,
    uri_without_database,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import (
    OrderedHasher,
    archive_facts,
    collection_facts,
    compare,
    content_sha256,
    differing_collections,
    id_sort_key,
    normalize_index,
    normalize_indexes,
    normalize_options,
)
from bson import SON, Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

# -- _id order ------------------------------------------------------------------------------------

MONGODB_ORDER = [
    MinKey(),
    None,
    float("nan"),
    float("-inf"),
    -5,
    Decimal128("-1.5"),
    0,
    Int64(3),
    3.5,
    Decimal128("1E+3"),
    "",
    "B",
    "a",
    "ab",
    "é",
    "中",
    {"a": 1},
    {"a": 1, "b": 0},
    {"b": 0},  # fields compare by type first, then name, then value
    {"a": "x"},
    Binary(b"z", 0),
    Binary(b"\x00\x00", 0),
    Binary(b"\x00\x00", 4),
    ObjectId("000000000000000000000001"),
    ObjectId("ffffffffffffffffffffffff"),
    False,
    True,
    datetime.datetime(1969, 12, 31, 23, 59, 59),
    datetime.datetime(2024, 1, 1),
    Timestamp(1, 1),
    Timestamp(1, 2),
    Timestamp(2, 0),
    Regex("a"),
    MaxKey(),
]


def test_id_sort_key_follows_mongodb_type_and_value_order():
    shuffled = MONGODB_ORDER[:]
    random.Random(3).shuffle(shuffled)  # noqa: S311 - reproducible order, not cryptography
    ordered = sorted(shuffled, key=id_sort_key)
    # NaN != NaN, so compare the keys rather than the values.
    assert [id_sort_key(v) for v in ordered] == [id_sort_key(v) for v in MONGODB_ORDER]


def test_numbers_compare_by_value_whatever_their_bson_type():
    assert id_sort_key(1) == id_sort_key(1.0) == id_sort_key(Int64(1)) == id_sort_key(Decimal128("1"))
    assert id_sort_key(2) > id_sort_key(1.5) > id_sort_key(Decimal128("1.25"))
    assert id_sort_key(float("nan")) < id_sort_key(-math.inf)


def test_dates_compare_as_milliseconds_whatever_the_timezone():
    utc = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc)  # noqa: UP017
    paris = datetime.datetime(2024, 1, 1, 13, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert id_sort_key(utc) == id_sort_key(paris) == id_sort_key(datetime.datetime(2024, 1, 1, 12))
    assert id_sort_key(bson.DatetimeMS(0)) == id_sort_key(datetime.datetime(1970, 1, 1))


# -- Content hash ---------------------------------------------------------------------------------


def _doc(_id, **fields):
    return bson.encode(SON([("_id", _id), *fields.items()]))


DOCS = [_doc(i, text=f"msg {i} ✓", at=datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i),
             nested={"tags": ["x", "y"], "n": i}) for i in range(200)]


def test_hash_is_sha256_of_the_raw_documents_in_id_order():
    count, digest = content_sha256(DOCS)
    assert count == 200
    assert digest == hashlib.sha256(b"".join(DOCS)).hexdigest()


def test_hash_does_not_depend_on_the_order_documents_come_in():
    expected = content_sha256(DOCS)
    rng = random.Random(11)  # noqa: S311 - reproducible order, not cryptography
    for _ in range(5):
        shuffled = DOCS[:]
        rng.shuffle(shuffled)
        assert content_sha256(shuffled) == expected
    assert content_sha256(reversed(DOCS)) == expected
    # Out of order only at the very end: the fast path has to give way.
    assert content_sha256(DOCS[1:] + DOCS[:1]) == expected


def test_hash_of_mixed_id_types_uses_mongodb_order():
    docs = [_doc(v, k=1) for v in MONGODB_ORDER if not (isinstance(v, float) and math.isnan(v))
            and not isinstance(v, (dict,))]
    assert content_sha256(docs[::-1]) == content_sha256(docs)
    assert content_sha256(docs)[1] == hashlib.sha256(b"".join(docs)).hexdigest()


def test_hash_changes_with_content_but_not_with_nothing():
    _count, digest = content_sha256(DOCS)
    changed = DOCS[:]
    changed[7] = _doc(7, text="msg 7 ✗")
    assert content_sha256(changed)[1] != digest
    assert content_sha256(DOCS[:-1])[1] != digest
    # Same values, other field order: other bytes, other hash (the bytes are what is stored).
    assert content_sha256([bson.encode(SON([("_id", 1), ("a", 1), ("b", 2)]))]) != content_sha256(
        [bson.encode(SON([("_id", 1), ("b", 2), ("a", 1)]))])
    assert content_sha256([]) == (0, hashlib.sha256(b"").hexdigest())


def test_duplicate_ids_still_hash_deterministically():
    a, b = _doc(1, v="a"), _doc(1, v="b")
    assert content_sha256([a, b, _doc(0)]) == content_sha256([_doc(0), b, a])


def test_ordered_hasher_counts():
    hasher = OrderedHasher().update(DOCS[:10])
    assert hasher.count == 10


def test_ordered_hasher_without_spool_says_when_it_cannot_hash():
    in_order = OrderedHasher(spool=False).update(DOCS)
    assert not in_order.out_of_order
    assert in_order.hexdigest() == content_sha256(DOCS)[1]
    shuffled = OrderedHasher(spool=False).update([DOCS[1], DOCS[0]])
    assert shuffled.out_of_order
    with pytest.raises(ValueError, match="hash them again"):
        shuffled.hexdigest()


class _FakeCollection:
    """Just what collection_facts() uses, with a server that ignores the sort it is asked for."""

    def __init__(self, docs):
        self.docs = docs
        self.finds = []

    def find(self, _filter, sort=None, batch_size=None):
        self.finds.append(sort)
        return [type("Raw", (), {"raw": raw})() for raw in self.docs]

    def list_indexes(self):
        return [SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])]


class _FakeDatabase:
    def __init__(self, collection):
        self.collection = collection

    def get_collection(self, _name, codec_options=None):
        return self.collection


def test_collection_facts_sort_here_when_the_server_order_is_not_mongodbs():
    shuffled = DOCS[:]
    random.Random(2).shuffle(shuffled)  # noqa: S311 - reproducible order, not cryptography
    collection = _FakeCollection(shuffled)
    facts = collection_facts(_FakeDatabase(collection), "messages", options={})
    assert facts["count"] == 200
    assert facts["content_sha256"] == hashlib.sha256(b"".join(DOCS)).hexdigest()
    assert collection.finds == [None]  # one pass in natural order (no server sort), sorted here

    in_order = _FakeCollection(DOCS)
    assert collection_facts(_FakeDatabase(in_order), "messages", options={}) == facts
    assert in_order.finds == [None]


def test_collection_facts_leave_out_what_exclude_says():
    collection = _FakeCollection(DOCS)
    facts = collection_facts(_FakeDatabase(collection), "messages", options={},
                             exclude=lambda raw: raw in DOCS[:10])
    assert facts["count"] == 190
    assert facts["content_sha256"] == hashlib.sha256(b"".join(DOCS[10:])).hexdigest()


# -- Indexes and options --------------------------------------------------------------------------


def test_normalize_index_keeps_what_matters():
    raw = SON([("v", 2), ("key", SON([("at", -1.0), ("user", 1)])), ("name", "at_user"), ("ns", "db.c"),
               ("unique", True), ("sparse", False), ("expireAfterSeconds", Int64(3600)),
               ("partialFilterExpression", {"at": {"$gt": datetime.datetime(2024, 1, 1)}}),
               ("background", True)])
    assert normalize_index(raw) == {
        "name": "at_user",
        "key": [["at", -1], ["user", 1]],
        "unique": True,
        "expireAfterSeconds": 3600,
        "partialFilterExpression": {"at": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}},
    }


def test_normalize_indexes_sorts_by_name_and_key_order_matters():
    first = SON([("v", 2), ("key", SON([("a", 1), ("b", 1)])), ("name", "z")])
    second = SON([("key", SON([("_id", 1)])), ("name", "_id_")])
    assert [ix["name"] for ix in normalize_indexes([first, second])] == ["_id_", "z"]
    swapped = SON([("v", 2), ("key", SON([("b", 1), ("a", 1)])), ("name", "z")])
    assert normalize_index(first) != normalize_index(swapped)


def test_normalize_options_is_json():
    assert normalize_options(SON([("size", Int64(4096)), ("capped", True)])) == {"capped": True, "size": 4096}
    assert normalize_options(None) == {}


# -- compare() ------------------------------------------------------------------------------------

ID_INDEX = {"name": "_id_", "key": [["_id", 1]]}
EMAIL_INDEX = {"name": "email_1", "key": [["email", 1]], "unique": True}


def _facts(count=3, sha="a" * 64, indexes=(ID_INDEX, EMAIL_INDEX), options=None):
    return {"count": count, "content_sha256": sha, "indexes": list(indexes), "options": options or {}}


def test_compare_equal_is_empty():
    assert compare({"users": _facts()}, {"users": _facts()}) == []


def test_compare_reports_every_kind_of_difference():
    expected = {"users": _facts(), "messages": _facts(10), "logs": _facts(1)}
    actual = {
        "users": _facts(4, sha="b" * 64, indexes=(ID_INDEX, {"name": "email_1", "key": [["email", 1]]},
                                                  {"name": "x_1", "key": [["x", 1]]})),
        "logs": _facts(1, options={"capped": True}),
        "experiments": _facts(2),
    }
    problems = compare(expected, actual)
    assert problems == [
        "collection 'messages' is missing (expected 10 documents)",
        "collection 'experiments' is extra: not in the reference (2 documents)",
        "collection 'logs': options {\"capped\": true}, expected {}",
        "collection 'users': 4 documents, expected 3",
        "collection 'users': content differs (sha256 bbbbbbbbbbbb..., expected aaaaaaaaaaaa...)",
        "collection 'users': unexpected index 'x_1' ({\"key\":[[\"x\",1]],\"name\":\"x_1\"})",
        "collection 'users': index 'email_1' differs: {\"key\":[[\"email\",1]],\"name\":\"email_1\"}, "
        "expected {\"key\":[[\"email\",1]],\"name\":\"email_1\",\"unique\":true}",
    ]
    assert differing_collections(expected, actual) == ["logs", "messages", "users"]


def test_compare_can_ignore_extra_collections_and_missing_index():
    assert compare({"a": _facts()}, {"a": _facts(), "b": _facts()}, ignore_extra=True) == []
    problems = compare({"a": _facts()}, {"a": _facts(indexes=(ID_INDEX,))})
    assert problems == ["collection 'a': index 'email_1' is missing "
                        "({\"key\":[[\"email\",1]],\"name\":\"email_1\",\"unique\":true})"]


def test_compare_skips_options_when_one_side_has_none():
    old = _facts()
    del old["options"]
    assert compare({"a": old}, {"a": _facts(options={"capped": True})}) == []


# -- Facts of an archive --------------------------------------------------------------------------


def test_archive_facts_equal_facts_of_the_same_documents_in_any_order():
    shuffled = DOCS[:]
    random.Random(5).shuffle(shuffled)  # noqa: S311 - reproducible order, not cryptography
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7.0.42", tool_version="t")
    index = SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])
    writer.write_prelude([CollectionEntry("chatbot", "messages", {"indexes": [index]}),
                          CollectionEntry("chatbot", "system.js", {"indexes": []})])
    writer.write_collection("chatbot", "messages", shuffled)
    writer.write_collection("chatbot", "system.js", [_doc("f")])
    writer.close()
    facts = archive_facts(ArchiveReader(io.BytesIO(out.getvalue())))
    assert facts["database"] == "chatbot"
    assert facts["server_version"] == "7.0.42"
    assert list(facts["collections"]) == ["messages"]
    assert facts["collections"]["messages"] == {
        "count": 200, "indexes": [ID_INDEX], "options": {},
        "content_sha256": hashlib.sha256(b"".join(DOCS)).hexdigest()}


def test_archive_facts_refuse_several_databases():
    out = io.BytesIO()
    writer = ArchiveWriter(out, server_version="7", tool_version="t")
    writer.write_prelude([CollectionEntry("a", "c", {"indexes": []}),
                          CollectionEntry("b", "c", {"indexes": []})])
    writer.write_collection("a", "c", [])
    writer.write_collection("b", "c", [])
    writer.close()
    with pytest.raises(ArchiveError, match="several databases"):
        archive_facts(ArchiveReader(io.BytesIO(out.getvalue())))


# -- URIs (mongo_common) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("mongodb://chatbot:s3cr%40t@db1:27017,db2:27017/chatbot-platform?replicaSet=rs0",
         "mongodb://chatbot:***@db1:27017,db2:27017/chatbot-platform?replicaSet=rs0"),
        ("mongodb://chatbot:pw@127.0.0.1:27017/", "mongodb://chatbot:***@127.0.0.1:27017/"),
        ("mongodb://127.0.0.1:27017/app", "mongodb://127.0.0.1:27017/app"),
        ("mongodb+srv://u:p@cluster.example.org/app?tlsCertificateKeyFilePassword=k&w=1",
         "mongodb+srv://u:***@cluster.example.org/app?tlsCertificateKeyFilePassword=***&w=1"),
        ("mongodb://user@host/app", "mongodb://user@host/app"),
        ("http://not-mongo", "<unparsable MongoDB URI>"),
    ],
)
def test_redact_uri(uri, redacted):
    assert redact_uri(uri) == redacted


def test_uri_parts():
    uri = "mongodb://chatbot:s3cr%40t@db1:27017,db2:27018/chatbot-platform?authSource=admin"
    assert uri_password(uri) == "s3cr@t"
    assert uri_hosts(uri) == "db1:27017,db2:27018"
    assert database_name(uri) == "chatbot-platform"
    assert uri_without_database(uri) == "mongodb://chatbot:s3cr%40t@db1:27017,db2:27018/?authSource=admin"
    assert uri_without_database("mongodb://u:p@h/app?w=1") == "mongodb://u:p@h/?w=1&authSource=app"
    assert uri_without_database("mongodb://h/app") == "mongodb://h/?authSource=app"
    assert uri_password("mongodb://h/app") is None


@pytest.mark.parametrize("uri", ["mongodb://u:p@h:27017", "mongodb://u:p@h:27017/", "mongodb://h/?w=1",
                                 "mongodb://h/a.b"])
def test_database_name_is_required_and_valid(uri):
    with pytest.raises(ValueError, match="database") as exc:
        database_name(uri)
    assert ":p@" not in str(exc.value)


def test_scrub_removes_uri_and_password_in_any_form():
    uri = "mongodb://chatbot:s3cr%40t@h:1/db"
    text = f"failed: {uri} / s3cr@t / s3cr%40t"
    cleaned = scrub(text, uri)
    assert "s3cr" not in cleaned
    assert "mongodb://chatbot:***@h:1/db" in cleaned


def test_argument_spec_hides_the_uri():
    spec = mongo_argument_spec()
    assert spec["uri"] == {"type": "str", "required": True, "no_log": True}
    assert spec["server_selection_timeout_ms"]["default"] == 5000


def test_raw_id_key_is_id_sort_key_of_the_decoded_id():
    from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import document_id
    from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import raw_id_key

    values = [ObjectId(), "conv-0001", "Zoë 🤖", "", 7, -3, Int64(2**40), 1.5, float("nan"), -0.0, True, None,
              datetime.datetime(2024, 1, 1), {"a": 1}, Binary(b"x"), Decimal128("1.5"), MinKey(), MaxKey()]
    for value in values:
        raw = bson.encode(SON([("_id", value), ("x", 1)]))
        expected = id_sort_key(document_id(raw))
        key = raw_id_key(raw)
        assert key == expected or (isinstance(value, float) and math.isnan(value) and key == expected == (3, 0))
    # _id not first: decoded the slow way, same key
    raw = bson.encode(SON([("x", 1), ("_id", "late")]))
    assert raw_id_key(raw) == (4, "late")
    # the order of the keys is MongoDB's: numbers < strings < ObjectId
    keys = sorted(raw_id_key(bson.encode({"_id": v})) for v in (ObjectId("0" * 24), "a", 3, 2.5))
    assert keys == [(3, 1, 2.5), (3, 1, 3), (4, "a"), (8, bytes(12))]
