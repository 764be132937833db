"""The acceptance of issue 23, over the real reference server on loopback HTTP.

On the demo, a first report; then a flag, a rename, a delete (pushed to the API) and a
new collection run (started through the API, run by the server's simulator); then a
second report from Python (``wb.report``). Its first paragraph states exactly those
changes (the new sellers being the ones the run created) and the run's outcome, and no
process is left behind by either report.
"""

from __future__ import annotations

import html as html_text
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psutil

from sellerbench.reports.report_words import day_words, duration_words, join_words, plural
from sellerbench.workbench import connect

FINAL = ("completed", "failed", "cancelled")


def summary(page: str) -> list[str]:
    section = re.search(r'<section class="summary">(.*?)</section>', page, re.DOTALL)
    assert section, "the page has no summary"
    return [html_text.unescape(re.sub(r"<[^>]+>", "", p))
            for p in re.findall(r"<p>(.*?)</p>", section.group(1), re.DOTALL)]


def quoted(names: list[str], count: int) -> str:
    shown = [f"“{n}”" for n in names[:3]]
    return join_words(shown + ([f"{count - 3:,} more"] if count > 3 else []))


def test_a_second_report_states_exactly_what_changed_and_how_the_run_went(
    make_server: Callable[..., Any], tmp_path: Path,
) -> None:
    srv = make_server(n=2_000, run_speed=20.0)
    wb = connect(srv.url, srv.tokens["admin"], tmp_path / "cache.duckdb")
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    try:
        wb.sync(progress=False)
        first = wb.report(tmp_path / "reports" / "first")
        before = wb.sellers()
        unflagged = before[~before["flagged"]].sort_values("id").iloc[0]
        renamed, deleted = before.sort_values("id").iloc[[1, 2]].itertuples()
        assert not {renamed.id, deleted.id} & {unflagged.id}
        wb.flag([unflagged.id], True)
        wb.rename(renamed.id, "Renamed Trading Co")
        wb.delete([deleted.id])
        assert wb.push().still_pending == 0
        category = wb.client.categories()[0]["id"]
        run = wb.start_run("Acceptance sweep", [category])
        deadline = time.monotonic() + 120
        while wb.run(run["id"])["status"] not in FINAL:
            assert time.monotonic() < deadline, "the run did not end within 120 s"
            time.sleep(0.2)
        second = wb.report(tmp_path / "reports" / "second")  # syncs first
        after = wb.sellers()
        ended = wb.run(run["id"])
    finally:
        wb.close()
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children

    new = after[~after["id"].isin(before["id"])].sort_values(["display_name", "id"])
    assert len(new) == ended["sellers_new"] > 0
    made = re.search(r"\((\d+ \w+ \d{4}, \d\d:\d\d UTC)\)",
                     summary(second.html.read_text(encoding="utf-8"))[0])
    assert made
    sentences = summary(second.html.read_text(encoding="utf-8"))
    assert sentences[0] == (
        f"Since the previous report ({made.group(1)}): "
        f"{plural(len(new), 'new seller')} ({quoted(list(new['display_name']), len(new))}), "
        f"1 seller newly flagged (“{unflagged.display_name}”), "
        f"1 seller renamed (“{renamed.display_name}” → “Renamed Trading Co”) and "
        f"1 seller deleted (“{deleted.display_name}”)."
    )
    started = day_words(date.fromisoformat(ended["started_at"][:10]), short=True)
    assert sentences[1] == (
        f"1 collection run since then: “Acceptance sweep” ({started}) {ended['status']} "
        f"after {duration_words(ended['duration_seconds'])}, finding "
        f"{plural(ended['sellers_found'], 'seller')} ({ended['sellers_new']:,} new)."
    )
    flagged, total = int(after["flagged"].sum()), len(after)
    was_flagged = int(before["flagged"].sum())
    assert sentences[2].startswith(f"{flagged:,} of {total:,} sellers are flagged (")
    assert f"from {was_flagged:,} of {len(before):,} (" in sentences[2]
    assert first.manifest is not None and second.manifest is not None
