"""What a database restore does with the login sessions created after the backup.

A restore puts the backup's `sessions` collection back, which logs out every user who logged in after the
backup was taken. With the `keep` policy the restore keeps those sessions when that is safe:

- created after the backup (created_at later than the manifest's created_at);
- not expired (expires_at later than now, at the time of the restore);
- their user (user_id) exists in the restored `users` with the same credentials (every credential field,
  by default `password`, equal to the user's before the restore). A user the backup does not have, or whose
  password the backup holds differently (changed or reset since), loses the session: it was opened with
  credentials the restored database does not know.

Everything else in `sessions` is exactly the backup's (sessions deleted since the backup come back, as they
were at backup time). The pre-restore snapshot keeps the whole current database whatever the policy.

To compare a database with the backup under this policy (before and after restoring, so that a second run
changes nothing), the sessions that the policy would keep are left out of the `sessions` facts: those
created after the backup whose user is in the current `users` (their expiry is not looked at, so that the
comparison does not change as time passes). The backup itself has no session created after it.

Documents look like {token_hash, user_id, created_at, expires_at}; `_id` is whatever the application
gives them (an ObjectId, or the token hash) and is kept as it is.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

try:
    import bson
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
except ImportError:  # pragma: no cover - depends on the managed host
    bson = None

POLICIES = ("restore", "keep")
UTC = datetime.timezone.utc  # noqa: UP017


def backup_time(created_at: str) -> datetime.datetime:
    """The manifest's created_at (ISO 8601) as an aware UTC datetime."""
    value = datetime.datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _aware(value) -> datetime.datetime | None:
    if not isinstance(value, datetime.datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decode(raw: bytes) -> dict:
    return bson.decode(raw)


class SessionPolicy:
    """The `keep` policy's settings: collection names, credential fields and the backup's time."""

    def __init__(self, since: datetime.datetime, *, sessions: str = "sessions", users: str = "users",
                 credential_fields: Iterable[str] = ("password",)) -> None:
        self.since = since
        self.sessions = sessions
        self.users = users
        self.credential_fields = tuple(credential_fields)

    def _credentials(self, user: dict) -> tuple:
        return tuple(user.get(field) for field in self.credential_fields)

    def user_credentials(self, db, user_ids=None) -> dict:
        """{user _id: credentials} of the users collection (of those ids when given)."""
        query = {"_id": {"$in": list(user_ids)}} if user_ids is not None else {}
        projection = {field: 1 for field in self.credential_fields} or {"_id": 1}
        return {user["_id"]: self._credentials(user) for user in db.get_collection(self.users).find(query, projection)}

    def is_after_backup(self, session: dict) -> bool:
        created = _aware(session.get("created_at"))
        return created is not None and created > self.since

    def exclusion(self, db) -> Callable[[bytes], bool]:
        """For the facts of `sessions`: whether a raw session is one the policy keeps (left out of the hash)."""
        user_ids = set(self.user_credentials(db))

        def excluded(raw: bytes) -> bool:
            session = _decode(raw)
            try:
                return self.is_after_backup(session) and session.get("user_id") in user_ids
            except TypeError:  # an unhashable user_id: not a session this policy knows
                return False

        return excluded

    def candidates(self, db) -> tuple[list[bytes], dict]:
        """Before the restore: the sessions created after the backup (raw) and their users' credentials."""
        raw = db.get_collection(self.sessions, codec_options=CodecOptions(document_class=RawBSONDocument))
        found = [doc.raw for doc in raw.find({"created_at": {"$gt": self.since}})]
        sessions = [session for session in found if self.is_after_backup(_decode(session))]
        user_ids = []
        for session in sessions:
            user_id = _decode(session).get("user_id")
            if user_id is not None and user_id not in user_ids:
                user_ids.append(user_id)
        return sessions, self.user_credentials(db, user_ids) if user_ids else {}

    def merge(self, db, sessions: list[bytes], live_credentials: dict, now: datetime.datetime | None = None
              ) -> dict[str, int]:
        """After the restore: insert the candidates the policy keeps. {kept, dropped}."""
        now = now or datetime.datetime.now(UTC)
        decoded = [(raw, _decode(raw)) for raw in sessions]
        user_ids = [doc.get("user_id") for _raw, doc in decoded if doc.get("user_id") in live_credentials]
        restored = self.user_credentials(db, user_ids) if user_ids else {}
        keep = []
        for raw, doc in decoded:
            user_id = doc.get("user_id")
            expires = _aware(doc.get("expires_at"))
            if (expires is not None and expires > now and user_id in live_credentials and user_id in restored
                    and restored[user_id] == live_credentials[user_id]):
                keep.append((raw, doc))
        target = db.get_collection(self.sessions, codec_options=CodecOptions(document_class=RawBSONDocument))
        if keep:
            hashes = [doc.get("token_hash") for _raw, doc in keep if doc.get("token_hash") is not None]
            ids = [doc.get("_id") for _raw, doc in keep if doc.get("_id") is not None]
            present = list(db.get_collection(self.sessions).find(
                {"$or": [{"token_hash": {"$in": hashes}}, {"_id": {"$in": ids}}]}, {"token_hash": 1}))
            taken_hashes = {doc.get("token_hash") for doc in present}
            taken_ids = {doc["_id"] for doc in present}
            new = [RawBSONDocument(raw) for raw, doc in keep
                   if doc.get("token_hash") not in taken_hashes and doc.get("_id") not in taken_ids]
            if new:
                target.insert_many(new, ordered=True)
            kept = len(new)
        else:
            kept = 0
        return {"kept": kept, "dropped": len(sessions) - kept}


__all__ = ["POLICIES", "SessionPolicy", "backup_time"]
