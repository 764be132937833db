"""Data for the export tests: awkward names and a way to put them in a cache."""

from __future__ import annotations

from sellerbench.cache.store import Store

# Names a spreadsheet or a CSV parser can trip on: unicode, separators, quotes,
# line breaks, and every character that starts a formula.
AWKWARD_NAMES = [
    "Zoë & Müller GmbH",
    "東京セラー",
    "Comma, Inc.",
    'The "Best" Deals',
    "Two\nLines",
    "Carriage\r\nReturn",
    "=HYPERLINK(\"http://x\",\"click\")",
    "+441234",
    "-5 Stars",
    "@handle",
    "\tTabbed",
    "\rReturned",
    "'Already quoted",
    "Plain Seller",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralized(text: str | None) -> str | None:
    """What a CSV export writes for a text cell (see sellerbench.reports.exports)."""
    if text and text[0] in FORMULA_STARTS:
        return "'" + text
    return text


def fill(store: Store, names: list[str], *, start: int = 0) -> list[str]:
    """Insert one live seller per name (ids s0000...), as a sync would have left them."""
    ids = [f"s{start + i:04d}" for i in range(len(names))]
    rows = [
        (
            sid,
            name,
            " ".join(name.lower().split()),
            ["ebay", "amazon"][i % 2],
            None if i % 3 == 0 else f"-p{i}",  # platform ids may start with '-' too
            i % 7,
            i % 2 == 0,
            None,
            f"run-{i % 3}",
            f"2024-0{1 + i % 9}-15 10:30:00.123456+02:00",
            f"2024-10-0{1 + i % 9} 23:59:59.5+00:00",
            None,
            start + i + 1,
        )
        for i, (sid, name) in enumerate(zip(ids, names, strict=True))
    ]
    with store.connect() as con:
        con.executemany(
            "INSERT INTO sellers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, "
            "?::TIMESTAMPTZ, ?, ?)",
            rows,
        )
    return ids
