"""The local side of changes: checks, the view, the queue, undo of unsent work (no server)."""

from __future__ import annotations

import pandas as pd
import pytest

from sellerbench.cache.store import Store
from sellerbench.errors import ConfigError, MutationError
from sellerbench.workbench import Workbench

from .mutation_model import seed_sellers


def _queued(wb: Workbench) -> int:
    with wb.store.connect() as con:
        return con.execute("SELECT count(*) FROM mutations").fetchall()[0][0]


def _visible(wb: Workbench, seller_id: str) -> dict | None:
    frame = wb.sellers(include_deleted=True)
    rows = frame[frame["id"] == seller_id].to_dict("records")
    return rows[0] if rows else None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda wb, ids: wb.flag(["no-such-id"]), "unknown seller id"),
        (lambda wb, ids: wb.flag([ids[0], "nope"]), "unknown seller id"),
        (lambda wb, ids: wb.flag([]), "no seller ids"),
        (lambda wb, ids: wb.flag(ids[0], "yes"), "True or False"),
        (lambda wb, ids: wb.rename(ids[0], "   "), "must not be empty"),
        (lambda wb, ids: wb.rename(ids[0], "x" * 201), "at most 200"),
        (lambda wb, ids: wb.rename(ids[0], "bad\x00name"), "control characters"),
        (lambda wb, ids: wb.rename(ids[0], 42), "must be a string"),
        (lambda wb, ids: wb.rename(ids[0], "  SELLER   0000003 "), "already in use"),
        (lambda wb, ids: wb.create(["Seller 0000004"]), "already in use"),
        (lambda wb, ids: wb.create(["New A", "new   a"]), "the same name is given twice"),
        (lambda wb, ids: wb.create([]), "no names"),
        (lambda wb, ids: wb.create(["ok", "tab\there"]), "control characters"),
        (lambda wb, ids: wb.restore(ids[0]), "live seller"),
        (lambda wb, ids: wb.delete([*ids[:2], "gone"]), "unknown seller id"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_queued(offline_wb, call, message):
    with pytest.raises(MutationError, match=message):
        call(offline_wb, offline_wb.seed_ids)
    assert _queued(offline_wb) == 0
    assert offline_wb.pending().empty


def test_deleted_sellers_refuse_flag_and_rename(offline_wb):
    victim = offline_wb.seed_ids[1]
    offline_wb.delete(victim)
    before = _queued(offline_wb)
    with pytest.raises(MutationError, match="restore them first"):
        offline_wb.flag(victim)
    with pytest.raises(MutationError, match="deleted"):
        offline_wb.rename(victim, "Another")
    assert _queued(offline_wb) == before


def test_a_pending_name_counts_as_taken(offline_wb):
    ids = offline_wb.seed_ids
    offline_wb.rename(ids[0], "Brand New Name")
    with pytest.raises(MutationError, match="already in use"):
        offline_wb.create(["brand new name"])
    # The name the rename gave up is free again at once.
    assert offline_wb.create(["Seller 0000000"])


def test_changes_show_at_once_in_sellers(offline_wb):
    ids = offline_wb.seed_ids
    offline_wb.flag(ids[:3], True)
    offline_wb.rename(ids[3], "Renamed Here")
    offline_wb.delete(ids[4])
    (new_id,) = offline_wb.create(["Made Offline"])
    frame = offline_wb.sellers()
    by_id = frame.set_index("id")
    assert by_id.loc[ids[:3], "flagged"].all()
    assert by_id.loc[ids[3], "display_name"] == "Renamed Here"
    assert by_id.loc[ids[3], "normalized_name"] == "renamed here"
    assert ids[4] not in by_id.index
    assert _visible(offline_wb, ids[4])["deleted_at"] is not pd.NaT
    assert new_id.startswith("local:")
    assert by_id.loc[new_id, "display_name"] == "Made Offline"
    assert not by_id.loc[new_id, "flagged"]
    assert len(frame) == 50  # 50 seeded - 1 deleted + 1 created
    assert set(offline_wb.sellers(flagged=True)["id"]) >= set(ids[:3])


def test_offline_create_takes_follow_ups(offline_wb):
    (new_id,) = offline_wb.create(["Fresh Seller"])
    offline_wb.flag(new_id)
    offline_wb.rename(new_id, "Fresh Seller Ltd")
    row = _visible(offline_wb, new_id)
    assert row["display_name"] == "Fresh Seller Ltd" and row["flagged"]
    pending = offline_wb.pending()
    assert list(pending["kind"]) == ["create", "flag", "rename"]
    assert set(pending["seller_id"]) == {new_id}


def test_pending_frame_types(offline_wb):
    offline_wb.flag(offline_wb.seed_ids[:2], True)
    pending = offline_wb.pending()
    assert len(pending) == 2
    assert pd.api.types.is_string_dtype(pending["id"])
    assert pd.api.types.is_string_dtype(pending["seller_id"])
    assert str(pending["created_at"].dt.tz) == "UTC"
    assert list(pending["change"]) == ["flagged=true", "flagged=true"]
    assert (pending["state"] == "pending").all() and (pending["attempts"] == 0).all()
    assert offline_wb.failed().empty


def test_undo_of_unsent_actions_empties_the_queue_level_by_level(offline_wb):
    ids = offline_wb.seed_ids
    original = offline_wb.sellers().set_index("id")
    offline_wb.flag(ids[:2], True)
    offline_wb.rename(ids[2], "Level Two")
    offline_wb.delete(ids[3])
    (new_id,) = offline_wb.create(["Level Four"])
    assert "create of 'Level Four'" in offline_wb.undo()
    assert _visible(offline_wb, new_id) is None
    assert "delete" in offline_wb.undo()
    assert _visible(offline_wb, ids[3])["deleted_at"] is pd.NaT or pd.isna(
        _visible(offline_wb, ids[3])["deleted_at"]
    )
    text = offline_wb.undo()
    assert "rename" in text and "never sent" in text
    assert "flag" in offline_wb.undo()
    assert offline_wb.undo() == "nothing to undo"
    assert offline_wb.pending().empty
    now = offline_wb.sellers().set_index("id")
    pd.testing.assert_frame_equal(
        now.loc[original.index, ["display_name", "flagged"]],
        original[["display_name", "flagged"]],
    )


def test_queue_survives_a_restart(tmp_path):
    path = tmp_path / "cache.duckdb"
    first = Workbench(Store(path), None, auto_push=False)
    ids = seed_sellers(first.store, 5)
    first.flag(ids[0])
    first.create(["Survivor"])
    first.close()
    second = Workbench(Store(path), None, auto_push=False)
    assert list(second.pending()["kind"]) == ["flag", "create"]
    assert "Survivor" in set(second.sellers()["display_name"])
    assert "create" in second.undo()  # the undo history survives too
    second.close()


def test_push_without_an_api_says_so(offline_wb):
    offline_wb.flag(offline_wb.seed_ids[0])
    with pytest.raises(ConfigError, match="offline"):
        offline_wb.push()
    assert len(offline_wb.pending()) == 1


def test_read_only_cache_refuses_changes(tmp_path):
    path = tmp_path / "cache.duckdb"
    ids = seed_sellers(Store(path), 3)
    wb = Workbench(Store(path, read_only=True), None, auto_push=False)
    with pytest.raises(MutationError, match="read-only"):
        wb.flag(ids[0])
    with pytest.raises(MutationError, match="read-only"):
        wb.undo()
