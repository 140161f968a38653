"""The state directory (``state.sqlite``): the contracts every state passes (with the login
throttle in memory, as a gateway with --state-dir and no Redis has it), then what only a
store on disk must do: outlive the process, keep its files private, hold one gateway,
migrate an older schema, refuse a newer one, stay bounded, and keep no secret."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.helpers.lasting_contract import LastingContract
from tests.helpers.state_contract import StateContract
from xmpp_post import __version__
from xmpp_post.errors import ConfigError
from xmpp_post.state import StateKey, StoredAnswer
from xmpp_post.state.memory import MemoryLoginThrottle
from xmpp_post.state.sqlite import (
    SqliteIdempotencyStore,
    SqliteKeyValue,
    SqliteQueues,
    SqliteState,
    schema,
)
from xmpp_post.state.sqlite.read_only import ReadOnlyKeyValue

ANSWER = StoredAnswer(201, b'{"id": "m1"}', "application/json", (("X-A", "1"),))


class SqliteHarness:
    """One state directory; a fake wall clock shared by the stores and the throttle."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.now = 1_700_000_000.0
        self.state = SqliteState(directory)

    def clock(self) -> float:
        return self.now

    def store(self, window: float, max_entries: int = 1000) -> SqliteIdempotencyStore:
        return SqliteIdempotencyStore(self.state, window=window, max_entries=max_entries,
                                      clock=self.clock)

    def throttle(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int) -> MemoryLoginThrottle:
        return MemoryLoginThrottle(window=window, pair_limit=pair_limit,
                                   address_limit=address_limit, account_limit=account_limit,
                                   clock=self.clock)

    def kv(self) -> SqliteKeyValue:
        return SqliteKeyValue(self.state, clock=self.clock)

    def queues(self, max_items: int = 1000) -> SqliteQueues:
        return SqliteQueues(self.state, max_items=max_items, clock=self.clock)

    async def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[SqliteHarness]:
    made = SqliteHarness(tmp_path / "state")
    yield made
    await made.state.close()


lasting_harness = harness


class TestSqliteState(StateContract):
    pass


class TestSqliteLasting(LastingContract):
    pass


async def test_answers_values_and_queues_outlive_the_process(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    state = SqliteState(directory)
    store = SqliteIdempotencyStore(state, window=600, max_entries=100)
    assert await store.claim(("a@x", "k"), b"fp") is None
    await store.finish(("a@x", "k"), ANSWER)
    await SqliteKeyValue(state).put("omemo", "identity", b"secret-ish")
    item = await SqliteQueues(state).push("bot", b"waiting")
    await state.close()

    again = SqliteState(directory)
    try:
        store = SqliteIdempotencyStore(again, window=600, max_entries=100)
        assert await store.claim(("a@x", "k"), b"fp") == ANSWER
        assert await SqliteKeyValue(again).get("omemo", "identity") == b"secret-ish"
        queues = SqliteQueues(again)
        assert [i.id for i in await queues.peek("bot")] == [item]
        assert await queues.length("bot") == 1
        assert await queues.push("bot", b"next") > item  # ids are never reused
    finally:
        await again.close()


async def test_a_running_gateways_values_are_read_without_its_lock(tmp_path: Path) -> None:
    """``omemo fingerprint`` reads while the gateway holds the directory."""
    with pytest.raises(ConfigError, match="holds no state database"):
        ReadOnlyKeyValue(tmp_path / "none")
    state = SqliteState(tmp_path / "state")  # holds the lock
    try:
        kv = SqliteKeyValue(state)
        await kv.put("omemo", "alice/ikp", b"key")
        await kv.put("omemo", "bob/ikp", b"other")
        await kv.put("omemo", "gone", b"x", ttl=-1)
        reader = ReadOnlyKeyValue(tmp_path / "state")
        try:
            assert await reader.get("omemo", "alice/ikp") == b"key"
            assert await reader.get("omemo", "gone") is None
            assert await reader.keys("omemo", "b") == ["bob/ikp"]
            assert await reader.keys("omemo") == ["alice/ikp", "bob/ikp"]
            await kv.put("omemo", "alice/ikp", b"newer")  # the gateway writes on
            assert await reader.get("omemo", "alice/ikp") == b"newer"
            with pytest.raises(PermissionError):
                await reader.put("omemo", "alice/ikp", b"mine")
        finally:
            reader.close()
    finally:
        await state.close()


async def test_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "fresh"
    state = SqliteState(directory)
    try:
        await SqliteKeyValue(state).put("n", "k", b"v")  # the WAL exists now
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for name in ("state.db", "state.db-wal", "state.db-shm", "state.key", "lock"):
            assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    finally:
        await state.close()


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_directory_others_may_write_to_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        SqliteState(directory)
    assert caught.value.setting == "state_dir" and "chmod go-w" in caught.value.problem
    assert list(directory.iterdir()) == []  # nothing made there


async def test_a_second_user_of_the_directory_is_refused_saying_why(tmp_path: Path) -> None:
    first = SqliteState(tmp_path / "state")
    try:
        with pytest.raises(ConfigError) as caught:
            SqliteState(tmp_path / "state")
        assert f"in use by another xmpp-post (process {os.getpid()})" in caught.value.problem
    finally:
        await first.close()
    await SqliteState(tmp_path / "state").close()  # released with the first


def _v1_database(directory: Path, key: bytes) -> None:
    """A state directory as schema version 1 left it, written without today's code."""
    directory.mkdir(mode=0o700)
    (directory / "state.key").write_bytes(key)
    (directory / "state.key").chmod(0o600)
    db = sqlite3.connect(directory / "state.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, written_by TEXT NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (1, '0.0.9')")
    db.execute("CREATE TABLE answers (id INTEGER PRIMARY KEY, k BLOB NOT NULL UNIQUE, "
               "fingerprint BLOB NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL, "
               "content_type TEXT NOT NULL, headers TEXT NOT NULL, expires REAL NOT NULL)")
    row_key = StateKey(key).digest("sqlite idempotency", "a@x", "old-key")
    db.execute("INSERT INTO answers VALUES (1, ?, ?, 201, ?, 'application/json', "
               "'[[\"X-A\", \"1\"]]', 4e9)", (row_key, b"fp", b'{"id": "m1"}'))
    db.close()


async def test_an_older_schema_is_migrated_and_keeps_its_answers(tmp_path: Path) -> None:
    directory = tmp_path / "old"
    _v1_database(directory, b"o" * 32)
    state = SqliteState(directory)
    try:
        assert state.migrated == schema.LATEST - 1
        assert state.db is not None
        assert state.db.execute("SELECT version, written_by FROM schema_version").fetchall() \
            == [(schema.LATEST, __version__)]
        store = SqliteIdempotencyStore(state, window=600, max_entries=100)
        assert await store.claim(("a@x", "old-key"), b"fp") == ANSWER
        await SqliteKeyValue(state).put("n", "k", b"v")  # the new tables work
    finally:
        await state.close()


def _digest(directory: Path) -> str:
    return hashlib.sha256((directory / "state.db").read_bytes()).hexdigest()


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "newer"
    _v1_database(directory, b"n" * 32)
    db = sqlite3.connect(directory / "state.db", isolation_level=None)
    db.execute("UPDATE schema_version SET version = 99, written_by = '9.0.0'")
    db.execute("CREATE TABLE from_the_future (x)")
    db.close()
    before = _digest(directory)
    with pytest.raises(ConfigError) as caught:
        SqliteState(directory)
    problem = caught.value.problem
    assert "newer xmpp-post (9.0.0, schema version 99)" in problem
    assert f"versions up to {schema.LATEST}" in problem and "left as it is" in problem
    assert _digest(directory) == before
    db = sqlite3.connect(directory / "state.db")
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(99,)]
    db.close()
    with pytest.raises(ConfigError, match="newer"):  # not "in use": the lock was let go
        SqliteState(directory)


def test_a_file_that_is_not_a_state_database_is_refused_and_left_as_it_is(
        tmp_path: Path) -> None:
    directory = tmp_path / "other"
    directory.mkdir(mode=0o700)
    (directory / "state.db").write_bytes(b"not a database at all" * 100)
    before = _digest(directory)
    with pytest.raises(ConfigError) as caught:
        SqliteState(directory)
    assert "left as it is" in caught.value.problem
    assert _digest(directory) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    db = sqlite3.connect(foreign / "state.db")
    db.execute("CREATE TABLE mine (x)")
    db.close()
    with pytest.raises(ConfigError, match="not an xmpp-post state database"):
        SqliteState(foreign)


def upkeep_runs(state: SqliteState) -> asyncio.Queue[None]:
    """A queue that gets an item each time a run of the upkeep ends (its last step)."""
    runs: asyncio.Queue[None] = asyncio.Queue()
    count_rows = state.upkeep.count_rows

    async def counted() -> None:
        await count_rows()
        runs.put_nowait(None)

    state.upkeep.count_rows = counted  # type: ignore[method-assign]
    return runs


async def test_expired_entries_are_removed_in_the_background(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state", upkeep_every=0)  # it wakes at once, unasked

    def hour_ago() -> float:  # the entries were written an hour ago
        return time.time() - 3600

    try:
        store = SqliteIdempotencyStore(state, window=0.2, max_entries=1000, clock=hour_ago)
        kv = SqliteKeyValue(state, clock=hour_ago)
        for n in range(30):
            assert await store.claim(("a@x", f"k{n}"), b"fp") is None
            await store.finish(("a@x", f"k{n}"), ANSWER)
        await kv.put("alerts", "short", b"v", ttl=0.2)
        await kv.put("alerts", "kept", b"v")
        runs = upkeep_runs(state)
        await state.start()
        await asyncio.wait_for(runs.get(), 5)
        assert state.rows["idempotency"] == 0 and state.rows["kv"] == 1
        assert state.db is not None
        assert state.db.execute("SELECT count(*) FROM answers").fetchone() == (0,)
    finally:
        await state.close()


async def test_answers_kept_are_bounded(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    try:
        store = SqliteIdempotencyStore(state, window=600, max_entries=40)
        for n in range(500):
            assert await store.claim(("a@x", f"k{n}"), b"fp") is None
            await store.finish(("a@x", f"k{n}"), ANSWER)
        assert state.db is not None
        (count,) = state.db.execute("SELECT count(*) FROM answers").fetchone()
        assert 40 <= count <= 40 + 16
        assert await store.claim(("a@x", "k499"), b"fp") == ANSWER  # the newest stay
        assert await store.claim(("a@x", "k0"), b"fp") is None  # the oldest went
    finally:
        await state.close()


async def test_a_duplicate_in_progress_waits_then_replays(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    try:
        store = SqliteIdempotencyStore(state, window=600, max_entries=100)
        assert await store.claim(("a@x", "k"), b"fp") is None
        waiting = asyncio.create_task(store.claim(("a@x", "k"), b"fp"))
        for _ in range(5):  # turns of the loop: the duplicate reaches its wait
            await asyncio.sleep(0)
        assert not waiting.done()
        await store.finish(("a@x", "k"), ANSWER)
        assert await asyncio.wait_for(waiting, 5) == ANSWER
    finally:
        await state.close()


def test_systemd_state_directory_is_the_default(tmp_path: Path) -> None:
    from xmpp_post import config

    base = {"domain": ["example.org"]}
    systemd = {"STATE_DIRECTORY": f"{tmp_path}/a:{tmp_path}/b"}
    assert config.load(base, environ=systemd).state_dir == tmp_path / "a"
    ours = {**systemd, "XMPP_POST_STATE_DIR": str(tmp_path / "c")}
    assert config.load(base, environ=ours).state_dir == tmp_path / "c"
    flag = {**base, "state_dir": str(tmp_path / "d")}
    assert config.load(flag, environ=ours).state_dir == tmp_path / "d"
    assert config.load(base, environ={}).state_dir is None


async def test_checkpoints_run_off_the_event_loop_and_close_empties_the_wal(
        tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state", checkpoint_every=50)
    seen: list[str] = []
    run_in_thread = state.upkeep.in_thread

    async def watched(job: Callable[[sqlite3.Connection], object]) -> object:
        def spy(db: sqlite3.Connection) -> object:
            seen.append(threading.current_thread().name)
            return job(db)
        return await run_in_thread(spy)

    state.upkeep.in_thread = watched  # type: ignore[assignment, method-assign]
    runs = upkeep_runs(state)
    try:
        await state.start()
        kv = SqliteKeyValue(state)
        for n in range(120):
            await kv.put("t", f"k{n}", b"v" * 100)
        wal = tmp_path / "state" / "state.db-wal"
        await asyncio.wait_for(runs.get(), 5)  # due after 50 commits: a checkpoint, a count
        assert len(seen) >= 2
        assert all(name.startswith("xmpp-post-state") for name in seen), seen
        assert wal.exists()
        busy, logged, copied = await state.upkeep.checkpoint()
        assert busy == 0 and copied == logged
    finally:
        await state.close()
    assert not wal.exists()  # the last connection checkpointed and removed it


async def test_a_full_queue_counts_pushes_in_flight(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    try:
        queues = SqliteQueues(state, max_items=3)
        pushes = await asyncio.gather(*(queues.push("q", b"x") for _ in range(5)),
                                      return_exceptions=True)
        assert sum(isinstance(p, int) for p in pushes) == 3
        assert await queues.length("q") == 3 and len(await queues.peek("q", 10)) == 3
    finally:
        await state.close()


async def test_a_feature_that_needs_lasting_state_names_the_setting(tmp_path: Path) -> None:
    from xmpp_post.state.lasting import require_lasting
    from xmpp_post.state.memory_lasting import memory_lasting
    from xmpp_post.state.sqlite import sqlite_lasting

    with pytest.raises(ConfigError) as caught:
        require_lasting(memory_lasting(), "OMEMO")
    assert caught.value.setting == "state_dir" and "--state-dir" in caught.value.problem
    state = SqliteState(tmp_path / "state")
    try:
        require_lasting(sqlite_lasting(state), "OMEMO")
    finally:
        await state.close()


async def test_writes_of_one_turn_commit_together_and_fail_alone(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state")
    statements: list[str] = []
    try:
        assert state.db is not None
        state.db.set_trace_callback(statements.append)

        def put(n: int) -> Callable[[sqlite3.Connection], int]:
            def job(db: sqlite3.Connection) -> int:
                db.execute("INSERT INTO kv (namespace, key, value) VALUES ('t', ?, x'00')",
                           (f"k{n}",))
                if n == 2:
                    raise ValueError("this one fails")
                return n
            return job

        together = await asyncio.gather(*(state.write_soon(put(n)) for n in range(2)))
        assert together == [0, 1]
        assert statements.count("BEGIN IMMEDIATE") == 1 and statements.count("COMMIT") == 1
        results = await asyncio.gather(*(state.write_soon(put(n)) for n in range(2, 5)),
                                       return_exceptions=True)
        assert isinstance(results[0], ValueError) and results[1:] == [3, 4]
        assert await SqliteKeyValue(state).keys("t") == ["k0", "k1", "k3", "k4"]
    finally:
        await state.close()


async def test_an_online_backup_restores_the_answers(tmp_path: Path) -> None:
    """What ``sqlite3 DIR/state.db '.backup FILE'`` does, while the gateway writes."""
    state = SqliteState(tmp_path / "state")
    store = SqliteIdempotencyStore(state, window=600, max_entries=100)
    try:
        assert await store.claim(("a@x", "k"), b"fp") is None
        await store.finish(("a@x", "k"), ANSWER)
        source = sqlite3.connect(tmp_path / "state" / "state.db")
        copy = sqlite3.connect(tmp_path / "backup.db")
        source.backup(copy)  # the gateway keeps its connections and its lock meanwhile
        source.close()
        copy.close()
        assert await store.claim(("a@x", "k2"), b"fp") is None  # still writing
        await store.finish(("a@x", "k2"), ANSWER)
    finally:
        await state.close()
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    (tmp_path / "backup.db").rename(restored / "state.db")
    (tmp_path / "state" / "state.key").rename(restored / "state.key")
    again = SqliteState(restored)
    try:
        store = SqliteIdempotencyStore(again, window=600, max_entries=100)
        assert await store.claim(("a@x", "k"), b"fp") == ANSWER
    finally:
        await again.close()
