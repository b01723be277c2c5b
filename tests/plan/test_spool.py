"""The spool of entries to send: in memory up to its threshold, compact chunks on disk
beyond it, and every iteration gives back exactly the entries put in, in order."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.plan.model import PlannedEntry
from connectly_declare.plan.spool import CHUNK, CHUNK_ENV, MEMORY_ENV, Spool


def planned(n: int, *, action: str = "send", reason: str = "", name: str = "Ana",
            zone: str = "", timing: int = 0, round_: int = 1,
            scheduled_at: str | None = None) -> PlannedEntry:
    variables = {"name": f"{name}{n}"}
    entry = Entry(sendout="welcome", campaign="Welcome", version="v1",
                  client=f"+1650555{n:04d}", variables=variables, scheduled_at=scheduled_at,
                  round=round_, allow_multiple=False,
                  fingerprint=fingerprint("v1", {"n": str(n)}, scheduled_at, round_),
                  source=f"data/people.csv:{n + 2}", zone=zone, timing=timing)
    return PlannedEntry(action, entry, reason)  # type: ignore[arg-type]


def full(p: PlannedEntry) -> tuple[object, ...]:
    """Everything of a planned entry, also the fields Entry equality leaves out."""
    e = p.entry
    return (p.action, p.reason, e.sendout, e.campaign, e.version, e.client,
            dict(e.variables), e.scheduled_at, e.round, e.allow_multiple, e.fingerprint,
            e.source, e.zone, e.timing)


def test_empty_spool() -> None:
    spool = Spool(memory=0)
    assert len(spool) == 0 and not spool and list(spool) == [] and list(spool.rows()) == []
    assert spool == () and spool.on_disk == 0
    with pytest.raises(IndexError):
        spool[0]


@pytest.mark.parametrize("memory", [0, 1, 5, 4, 6])
def test_exactly_the_threshold_stays_in_memory_one_more_spills(memory: int) -> None:
    items = [planned(n) for n in range(5)]
    spool = Spool(items, memory=memory, chunk=1)
    assert spool.on_disk == (0 if memory >= 5 else 5)
    assert list(spool) == items and [full(p) for p in spool] == [full(p) for p in items]
    assert len(spool) == 5


def test_many_chunks_on_disk_come_back_in_order_every_time() -> None:
    count = 3 * CHUNK + 17
    items = [planned(n % 10_000, action="resend" if n % 3 else "send",
                     reason="why" if n % 2 else "", zone="Europe/Berlin" if n % 5 else "",
                     timing=n % 4, scheduled_at=None if n % 7 else "2026-12-01T09:00:00+01:00")
             for n in range(count)]
    spool = Spool(memory=100)
    for p in items:
        spool.append(p)
    assert spool.on_disk >= count - CHUNK and len(spool) == count
    for _ in range(3):  # re-iterable, same order, same values
        assert [full(p) for p in spool] == [full(p) for p in items]
    assert spool == items and spool == tuple(items) and tuple(items) == spool
    assert spool[0] == items[0] and spool[-1] == items[-1] and spool[CHUNK + 1] == items[CHUNK + 1]
    rows = list(spool.rows())
    assert [(r[0], r[1], r[2][0]) for r in rows] == [
        (p.action, p.reason, p.entry.client) for p in items]
    assert {r[3] for r in rows} == {("welcome", "Welcome", "v1", 1, False)}


def test_two_iterations_side_by_side_and_appending_after_reading() -> None:
    spool = Spool([planned(n) for n in range(50)], memory=3, chunk=4)
    pairs = list(zip(spool, spool, strict=True))
    assert all(a == b for a, b in pairs) and len(pairs) == 50
    spool.append(planned(99))
    assert len(spool) == 51 and list(spool)[-1] == planned(99)


def test_unicode_and_odd_values_survive_the_disk() -> None:
    odd = [
        planned(1, name="Bó \"x\"\n\t🙂 ﷽", reason="ünïcode ✓"),
        planned(2, name="\x00\x1f\u2028\u2029"),
        planned(3, name="\ud800 lone surrogate", zone="America/Argentina/Buenos_Aires"),
        planned(4, name="", timing=7, scheduled_at="2026-12-01T09:00:00-03:00"),
    ]
    other_round = planned(5, round_=9)  # not the spool's constants: kept per entry
    proxy_entry = Entry(**{**{f: getattr(odd[0].entry, f) for f in (
        "sendout", "campaign", "version", "client", "scheduled_at", "round",
        "allow_multiple", "fingerprint", "source", "zone", "timing")},
        "variables": MappingProxyType({"name": "mapping"})})
    items = [*odd, other_round, PlannedEntry("retry", proxy_entry, "")]
    for chunk in (1, 3, 100):
        spool = Spool(items, memory=0, chunk=chunk)
        assert spool.on_disk >= len(items) - chunk + 1
        assert [full(p) for p in spool] == [full(p) for p in items]
        assert spool[4].entry.round == 9
        assert [r[3][3] for r in spool.rows()] == [1, 1, 1, 1, 9, 1]


def test_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "2")
    monkeypatch.setenv(CHUNK_ENV, "1")
    spool = Spool(planned(n) for n in range(3))
    assert spool.on_disk == 3
    monkeypatch.setenv(MEMORY_ENV, "nonsense")
    assert Spool(planned(n) for n in range(3)).on_disk == 0
    monkeypatch.setenv(MEMORY_ENV, "0")
    monkeypatch.setenv(CHUNK_ENV, "2")
    assert Spool(planned(n) for n in range(4)).on_disk == 3  # 1 past the threshold, 1 chunk


def test_a_full_temporary_folder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: object) -> None:
    import tempfile

    from connectly_declare.errors import DeclareError

    def no_room(*_a: object, **_k: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_room)
    with pytest.raises(DeclareError, match=r"cannot keep the entries to send on disk.*"
                       r"No space left"):
        Spool([planned(n) for n in range(3)], memory=1)


def test_the_plain_constructor_path_rebuilds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries are rebuilt through Entry's slots while its fields are the known ones;
    otherwise through Entry itself: both give back the same."""
    from connectly_declare.plan import spoolcodec as module

    items = [planned(n, zone="Asia/Jakarta", timing=n) for n in range(5)]
    monkeypatch.setattr(module, "_FAST", False)
    assert [full(p) for p in Spool(items, memory=0, chunk=2)] == [full(p) for p in items]


@pytest.mark.parametrize(("memory", "chunk", "sizes"), [
    (0, 1, [1, 3, 7]), (5, 3, [2, 2, 2, 9, 1]), (4, 4, [13, 0, 4, 5]), (20, 7, [50])])
def test_extending_by_lists_spills_where_appending_one_by_one_does(
        memory: int, chunk: int, sizes: list[int]) -> None:
    """The plan hands each chunk's sends over as a list: the spool must hold, write and
    give back exactly what appending them one at a time would."""
    items = [planned(n, name=f"n{n}") for n in range(sum(sizes))]
    one, many = Spool(memory=memory, chunk=chunk), Spool(memory=memory, chunk=chunk)
    start = 0
    for size in sizes:
        for item in items[start:start + size]:
            one.append(item)
        many.extend(items[start:start + size])
        start += size
        assert (many.on_disk, len(many)) == (one.on_disk, len(one))
    assert [full(p) for p in many] == [full(p) for p in one] == [full(p) for p in items]
    assert list(many.rows()) == list(one.rows())


def test_reading_chunks_back_pauses_the_collector_only_inside_the_spool() -> None:
    """Rebuilding a chunk makes thousands of small objects at once: with the collector
    running that set off a collection every 700 of them (and full ones); it pauses while
    a chunk is read, and runs again while the caller holds the entries."""
    import gc

    items = [planned(n) for n in range(30_000)]
    spool = Spool(items, memory=0, chunk=4_096)
    assert spool.on_disk > 25_000
    assert gc.isenabled()
    for walk in (lambda: iter(spool), spool.rows):
        before = sum(generation["collections"] for generation in gc.get_stats())
        enabled = [gc.isenabled() for _ in walk()]
        after = sum(generation["collections"] for generation in gc.get_stats())
        assert len(enabled) == 30_000 and all(enabled)
        assert after - before < 30  # about 2 x 30,000 / 700 without the pause
    assert [full(p) for p in spool] == [full(p) for p in items]


@pytest.mark.parametrize(("memory", "chunk"), [(10_000, 7), (0, 7), (0, 1), (30, 7), (5, 64)])
def test_field_chunks_and_entry_of_row_give_what_iterating_gives(memory: int,
                                                                 chunk: int) -> None:
    from itertools import chain

    from connectly_declare.plan.spoolcodec import entry_of_row

    items = [planned(n, zone="Asia/Tokyo" if n % 3 else "", timing=n % 4,
                     scheduled_at=None if n % 2 else "2026-12-01T09:00:00+01:00")
             for n in range(53)]
    items[9] = items[9]._replace(entry=Entry(  # constants of its own: kept as an override
        "other", "Other", None, "+16505550009", {}, None, 2, True, "f" * 32))
    spool = Spool(items, memory=memory, chunk=chunk)
    assert list(chain.from_iterable(spool.field_chunks("client"))) == [
        p.entry.client for p in items]
    assert list(chain.from_iterable(spool.client_chunks())) == [p.entry.client for p in items]
    assert list(chain.from_iterable(spool.field_chunks("scheduled_at", "zone", "timing"))) == [
        (p.entry.scheduled_at, p.entry.zone, p.entry.timing) for p in items]
    assert [full(PlannedEntry(a, entry_of_row(f, c), r)) for a, r, f, c in spool.rows()] \
        == [full(p) for p in items]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not per-entry fields"):
        list(spool.field_chunks("sendout"))


@pytest.mark.parametrize(("memory", "chunk"), [(10_000, 7), (0, 7), (0, 1), (30, 7), (5, 64)])
@pytest.mark.parametrize("pattern", ["none", "all", "odd", "first-half", "every-seventh"])
def test_without_keeps_exactly_the_entries_not_dropped_in_order(memory: int, chunk: int,
                                                                pattern: str) -> None:
    items = [planned(n, action="resend" if n % 3 else "send", reason="why" if n % 2 else "")
             for n in range(61)]
    items[20] = items[20]._replace(entry=Entry(  # constants of its own: kept as an override
        "other", "Other", None, "+16505550020", {}, None, 2, True, "f" * 32))
    spool = Spool(items, memory=memory, chunk=chunk)
    drop = bytearray({"none": 0, "all": 1}.get(pattern, 0) for _ in items)
    for n in range(len(items)):
        if (pattern == "odd" and n % 2) or (pattern == "first-half" and n < 30) \
                or (pattern == "every-seventh" and n % 7 == 0):
            drop[n] = 1
    expected = [p for n, p in enumerate(items) if not drop[n]]
    kept = spool.without(drop)
    assert len(kept) == len(expected)
    for _ in range(2):
        assert [full(p) for p in kept] == [full(p) for p in expected]
    kept.append(items[0])  # still a spool to append to, after what it kept
    assert [full(p) for p in kept] == [full(p) for p in [*expected, items[0]]]
    assert [full(p) for p in spool] == [full(p) for p in items]  # the original unchanged
    with pytest.raises(ValueError, match="flags for a spool"):
        spool.without(bytearray(len(items) - 1))


@pytest.mark.parametrize(("memory", "chunk"), [(10_000, 7), (0, 7), (0, 1), (30, 7), (5, 64)])
def test_rows_at_gives_the_rows_at_those_positions(memory: int, chunk: int) -> None:
    items = [planned(n, action="resend" if n % 3 else "send") for n in range(61)]
    spool = Spool(items, memory=memory, chunk=chunk)
    rows = list(spool.rows())
    for positions in ([], [0], [60], [3, 4, 5, 29, 30, 31, 59], list(range(61)),
                      list(range(0, 61, 8))):
        assert list(spool.rows_at(positions)) == [rows[p] for p in positions]
