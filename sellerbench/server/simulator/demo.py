"""Deterministic demo data: N sellers with realistic names and a short run history.

The same ``(n, seed)`` always gives the same rows (ids, names, times, flags, revs).
Rows are produced by a generator and inserted with ``executemany`` inside one
transaction before the indexes exist, which is what makes a million rows fast.

The names mix marketplace handles (``vintage_finds_22``) and store names
(``Müller & Söhne Antiques``), with some unicode, some commas and double quotes, and a
few that start with ``=``, ``+``, ``-`` or ``@`` (spreadsheet formula triggers), because
clients have to survive all of them. Normalized names are unique.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ...schema import normalize_name
from ..storage.catalog import CATEGORIES
from ..storage.core import Storage
from ..storage.records import INSERT_RUN, INSERT_SELLER

__all__ = ["DemoSummary", "generate"]

# A fixed anchor keeps the data identical for a seed whatever day it is generated.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 24 * 3600

ADJECTIVES = (
    "vintage", "retro", "classic", "rare", "golden", "happy", "lucky", "urban", "rustic",
    "cosmic", "little", "big", "blue", "red", "green", "silver", "quiet", "wild", "north",
    "south", "east", "west", "old", "new", "fine", "prime", "smart", "daily", "bright",
    "cozy", "swift", "royal", "humble", "honest", "modern", "bold", "sunny", "misty",
)
NOUNS = (
    "finds", "treasures", "deals", "goods", "attic", "closet", "corner", "vault", "market",
    "bazaar", "emporium", "outlet", "store", "shop", "trader", "picker", "collector", "hub",
    "depot", "warehouse", "gems", "relics", "records", "threads", "gadgets", "toys", "books",
    "cards", "coins", "clocks", "lamps", "cameras", "vinyl", "kicks", "watches", "gear",
)
SURNAMES = (
    "Müller", "Schmidt", "Smith", "Jones", "García", "Martínez", "Rossi", "Bianchi",
    "Dubois", "Lefèvre", "Novák", "Kowalski", "Nowak", "Andersson", "Johansson", "Østergaard",
    "O'Brien", "MacLeod", "Papadopoulos", "Yılmaz", "Nakamura", "Tanaka", "Kim", "Nguyen",
    "Silva", "Costa", "van der Berg", "De Vries", "Horvat", "Petrović", "Ivanova", "Brown",
)
FAMILY = ("& Söhne", "& Sons", "& Fils", "& Figli", "& Daughters", "& Co.", "Brothers", "& Hijos")
GOODS = (
    "Antiques", "Curiosities", "Vintage", "Collectibles", "Books", "Records", "Cameras",
    "Clocks", "Furniture", "Jewellery", "Watches", "Toys", "Coins", "Stamps", "Prints",
    "Textiles", "Lighting", "Audio", "Electronics", "Ceramics",
)
CITIES = (
    "Berlin", "München", "Köln", "Zürich", "Wien", "Paris", "Lyon", "Milano", "Roma",
    "Madrid", "Sevilla", "Lisboa", "Porto", "London", "Leeds", "Dublin", "Kraków", "Łódź",
    "Praha", "Brno", "Malmö", "Göteborg", "København", "Reykjavík", "İstanbul", "Αθήνα",
    "東京", "大阪", "서울", "São Paulo", "Montréal", "Québec", "New York", "Austin",
)
UNICODE_STORES = (
    "Café Lumière", "東京レトロ", "大阪ヴィンテージ", "서울 빈티지", "Ελληνικές Αντίκες",
    "Антиквариат Москва", "Ørsted Vinyl", "Łódź Retro", "Crème de la Crème", "Señor Tiempo",
    "Ça Va Brocante", "Ĳsselmeer Curios", "Ñandú Objects", "Þór Collectibles",
)
FORMULA_STARTS = ("=SUM Deals", "+44 Phone Parts", "-50% Outlet", "@home_goods", "=cmd Vintage")
COUNTRIES = ("uk", "de", "us", "fr", "it", "es", "nl")
_NA, _NN, _NS, _NF, _NG, _NC, _NU = (
    len(ADJECTIVES), len(NOUNS), len(SURNAMES), len(FAMILY), len(GOODS), len(CITIES),
    len(UNICODE_STORES),
)
PLATFORMS = ("ebay",) * 18 + ("etsy",) * 1 + ("amazon",) * 1
TIE_BATCH = 25  # rows of a simulated bulk import share one updated_at
TIE_EVERY = 100


class DemoSummary(dict):
    """Counts of what ``generate`` wrote (sellers, flagged, deleted, runs) and its seconds."""


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


class _Clock:
    """Formats epoch microseconds as stored timestamps, fast: the date part is cached."""

    def __init__(self) -> None:
        self._day = -1
        self._date = ""

    def __call__(self, micros: int) -> str:
        sec, us = divmod(micros, 1_000_000)
        day, sec = divmod(sec, 86_400)
        if day != self._day:
            self._day = day
            self._date = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
        hours, sec = divmod(sec, 3600)
        minutes, sec = divmod(sec, 60)
        return f"{self._date}T{hours:02d}:{minutes:02d}:{sec:02d}.{us:06d}Z"


def _name(rnd) -> str:
    """One seller name; ``rnd`` is a seeded ``random()`` (cheaper than randrange/choice).

    Lookups are inlined (``SEQ[int(rnd() * len)]``): this runs once per demo row.
    """
    roll = rnd()
    if roll < 0.62:
        adj = ADJECTIVES[int(rnd() * _NA)]
        noun = NOUNS[int(rnd() * _NN)]
        style = rnd()
        if style < 0.45:
            return f"{adj}_{noun}_{int(rnd() * 999) + 1}"
        if style < 0.7:
            return f"{adj}{noun}{int(rnd() * 9999) + 1}"
        if style < 0.85:
            return f"{adj}-{noun}-{COUNTRIES[int(rnd() * 7)]}"
        return f"the.{adj}.{noun}.{int(rnd() * 99) + 1}"
    if roll < 0.80:
        return (f"{SURNAMES[int(rnd() * _NS)]} {FAMILY[int(rnd() * _NF)]} "
                f"{GOODS[int(rnd() * _NG)]}")
    if roll < 0.88:
        return f"{CITIES[int(rnd() * _NC)]} {GOODS[int(rnd() * _NG)]} Co."
    if roll < 0.93:
        return (f"{SURNAMES[int(rnd() * _NS)]}, {SURNAMES[int(rnd() * _NS)]} & Co "
                f"{GOODS[int(rnd() * _NG)]}")
    if roll < 0.97:
        adj = ADJECTIVES[int(rnd() * _NA)].capitalize()
        return f'The "{adj}" {GOODS[int(rnd() * _NG)]} Shop'
    if roll < 0.998:
        return f"{UNICODE_STORES[int(rnd() * _NU)]} {CITIES[int(rnd() * _NC)]}"
    return FORMULA_STARTS[int(rnd() * len(FORMULA_STARTS))]


def _runs(rng: random.Random, clock: _Clock, start_us: int, rev: int) -> list[tuple[Any, ...]]:
    """A short history of finished runs, spread over the demo's time span."""
    statuses = ("completed", "completed", "completed", "failed", "completed", "cancelled")
    rows = []
    for i, status in enumerate(statuses):
        began = start_us + (i + 1) * SPAN_SECONDS * 1_000_000 // (len(statuses) + 1)
        cats = rng.sample(CATEGORIES, rng.randrange(2, 7))
        cat_ids = [c[0] for c in cats]
        departments = len({c[2] for c in cats})
        products = len(cats) * 40
        done = 1.0 if status == "completed" else rng.uniform(0.2, 0.8)
        searched = int(products * done)
        duration = round(searched * rng.uniform(0.8, 1.6), 3)
        ended = began + int(duration * 1_000_000)
        found = searched * rng.randrange(3, 9)
        rev += 1
        rows.append((
            _uuid(rng), f"Sweep {clock(began)[:10]} ({', '.join(c[1] for c in cats[:2])})",
            status, json.dumps(cat_ids), clock(began), clock(ended), None, clock(began),
            clock(ended), None, departments, departments if done == 1.0 else departments // 2,
            len(cats), int(len(cats) * done), products, searched, found, found // 3,
            0 if status == "completed" else rng.randrange(1, 20), duration, rev,
        ))
    return rows


def _sellers(
    n: int, rng: random.Random, start_us: int, runs: list[tuple[Any, ...]], rev: int
) -> Iterator[tuple[Any, ...]]:
    """The seller rows, in ``updated_at`` (and so ``rev``) order.

    The hot loop of a million-row demo: timestamps are formatted with a cached seconds
    prefix, names are made unique with a branch number ("Smith & Sons Clocks 2").
    """
    rnd, bits = rng.random, rng.getrandbits
    stamp = _Clock()
    step = SPAN_SECONDS * 1_000_000 // max(n, 1)
    run_ids = [r[0] for r in runs]
    n_runs = len(run_ids)
    seen_names: set[str] = set()
    moment = start_us
    tie_left = 0
    for i in range(n):
        if tie_left:
            tie_left -= 1
        else:
            moment += 1 + int(rnd() * 2 * step)
            if i % TIE_EVERY == TIE_EVERY // 2:  # at a fixed place, so small demos have ties
                tie_left = TIE_BATCH - 1
        updated = stamp(moment)
        created = updated if rnd() < 0.7 else stamp(moment - 1 - int(rnd() * 30 * step))
        display = _name(rnd)
        norm = normalize_name(display)
        if norm in seen_names:
            k = 2
            while f"{norm} {k}" in seen_names:
                k += 1
            display, norm = f"{display} {k}", f"{norm} {k}"
        seen_names.add(norm)
        if rnd() < 0.85:
            first = int(rnd() * n_runs)
            last = first + int(rnd() * (n_runs - first))
            times = 1 + int(rnd() * (last - first + 1))
            first_id, last_id = run_ids[first], run_ids[last]
            platform_id = str(100_000_000 + bits(39))
        else:
            times, first_id, last_id, platform_id = 0, None, None, None
        # UUIDv7 from the row's time: ids arrive in key order, so the primary-key b-tree
        # grows at its end (a quarter faster to load than random v4 ids)
        r = bits(74)
        h = (f"{moment // 1000:012x}{0x7000 | (r >> 62):04x}"
             f"{0x8000 | ((r >> 48) & 0x3FFF):04x}{r & 0xFFFFFFFFFFFF:012x}")
        rev += 1
        yield (
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            display, norm, PLATFORMS[int(rnd() * 20)], platform_id, times,
            1 if rnd() < 0.05 else 0, first_id, last_id, created, updated,
            updated if rnd() < 0.01 else None, rev,
        )


def generate(storage: Storage, n: int, seed: int = 7) -> DemoSummary:
    """Write N demo sellers and a run history into an empty storage, in one transaction.

    The indexes are built once at the end of that transaction (``bulk_write``).
    """
    began = time.perf_counter()
    rng = random.Random(seed)
    clock = _Clock()
    start_us = int(ANCHOR.timestamp() * 1_000_000) - SPAN_SECONDS * 1_000_000
    with storage.bulk_write() as tx:
        runs = _runs(rng, clock, start_us, tx.rev)
        tx.executemany(INSERT_RUN, runs)
        tx.rev += len(runs)
        tx.executemany(
            INSERT_SELLER,
            _sellers(n, rng, start_us, runs, tx.rev),
        )
        tx.rev += n
        flagged, deleted = tx.execute(
            "SELECT coalesce(sum(flagged), 0), count(deleted_at) FROM sellers"
        ).fetchone()
    return DemoSummary(
        sellers=n, flagged=flagged, deleted=deleted, runs=len(runs),
        seconds=round(time.perf_counter() - began, 3),
    )
