"""A Hypothesis state machine: the analyst's changes, another client's, a running
collection, pulls, pushes and syncs, interleaved at random.

The model is plain Python:

- ``server``: every seller on the server (name, flagged, live), kept by applying the
  other client's writes as they happen and ours as a push applies them, in queue
  order, refusing what the contract refuses (a flag or rename of a seller deleted
  there is 404, a name live there is 409, a restore whose name is taken is 409);
- ``cached``: the server as of the last pull;
- ``pending``: our queued changes, in order.

What the analyst sees must always equal ``cached`` with ``pending`` applied on top.
Between a push and the next pull one looseness is allowed, and only where the server
answered: a seller a confirmed change touched may show what the server's answer said
about it (the other client's newer name, say) where the cache has not pulled it yet;
a field our confirmed change set must show that value (no flicker back). After a
push and a sync, the cache equals the server, and both equal the model.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sellerbench.api.client import ApiClient
from sellerbench.cache import sync as sync_module
from sellerbench.changes.mutations import normalize_name
from sellerbench.server.embedded import start
from sellerbench.workbench import connect

from ..cache.syncutil import assert_cache_equals_server

FIELDS = ("name", "flagged", "live")
SETS = {"flag": ("flagged",), "rename": ("name",), "delete": ("live",),
        "restore": FIELDS, "create": FIELDS}


@dataclass(frozen=True)
class S:
    name: str
    flagged: bool
    live: bool


@dataclass(frozen=True)
class Op:
    kind: str  # flag | rename | delete | restore | create
    target: str  # seller id (server id, or local:... for our own creates)
    name: str | None = None
    flagged: bool | None = None


def _overlay(state: S | None, op: Op) -> S:
    """What a queued change shows (the pending_effects view's rules)."""
    if op.kind == "create":
        return S(op.name or "", False, True)
    assert state is not None
    if op.kind == "flag":
        return replace(state, flagged=bool(op.flagged))
    if op.kind == "rename":
        return replace(state, name=op.name or "")
    if op.kind == "delete":
        return replace(state, live=False)
    return S(op.name or state.name, bool(op.flagged), True)  # restore: as it was seen


def _pull_only(wb) -> None:
    """A sync whose push sent nothing (as when writes fail): the pull runs under the
    queue, which is the rebase. The Workbench pushes first; the pull alone is sync.pull."""
    sync_module.pull(wb.store, wb.client, progress=False)


class Interleavings(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="sb-model-"))
        self.srv = start(n=14, seed=29, data_dir=self.tmp / "server", run_speed=60)
        token = self.srv.tokens["analyst"]
        self.wb = connect(self.srv.url, token, self.tmp / "cache.duckdb", auto_push=False)
        self.other = ApiClient(self.srv.url, token)
        self.admin = ApiClient(self.srv.url, self.srv.tokens["admin"])
        self.wb.sync(progress=False)
        self.server: dict[str, S] = self._read_server()
        # Sellers our rules may pick, in the order they became known: ids are random
        # from run to run, positions are not (Hypothesis replays choices by position).
        # Sellers a collection run creates are only looked at, never picked.
        self.order: list[str] = list(self.server)
        self.cached = dict(self.server)
        self.allowed = self._exact(self.cached)
        self.pending: list[Op] = []
        self.counter = 0

    def teardown(self) -> None:
        try:
            self.wb.close()
            self.other.close()
            self.admin.close()
        finally:
            self.srv.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------

    def _read_server(self) -> dict[str, S]:
        out: dict[str, S] = {}
        page = self.other.sync_sellers(since_rev=0, limit=10_000)
        assert not page.has_more
        for item in page.items:
            out[item["id"]] = S(item["display_name"], item["flagged"], item["deleted_at"] is None)
        return out

    @staticmethod
    def _exact(rows: dict[str, S]) -> dict[str, dict[str, set]]:
        return {i: {f: {getattr(s, f)} for f in FIELDS} for i, s in rows.items()}

    def _fresh(self, who: str) -> str:
        self.counter += 1
        return f"{who} name {self.counter:04d}"

    def _visible_model(self) -> dict[str, dict[str, set]]:
        """id -> field -> the values the analyst may see (one, except after a push)."""
        shown = {i: {f: set(v) for f, v in fields.items()} for i, fields in self.allowed.items()}
        for op in self.pending:
            current = shown.get(op.target)
            state = None if current is None else S(*(min(current[f], key=str) for f in FIELDS))
            after = _overlay(state, op)
            fields = shown.setdefault(op.target, {})
            for f in SETS[op.kind]:  # what a queued change sets shows exactly
                fields[f] = {getattr(after, f)}
        return shown

    def _visible_names(self) -> set[str]:
        """Normalized names the analyst sees live (a name must be free to be taken)."""
        names = set()
        for fields in self._visible_model().values():
            if True in fields["live"]:
                names |= {normalize_name(n) for n in fields["name"]}
        return names

    def _live_targets(self) -> list[str]:
        model = self._visible_model()
        return [i for i in self.order if i in model and model[i]["live"] == {True}]

    def _deleted_targets(self) -> list[str]:
        model = self._visible_model()
        return [i for i in self.order if i in model and model[i]["live"] == {False} and
                not i.startswith("local:")]

    # -- the analyst --------------------------------------------------------------------

    @precondition(lambda self: self._live_targets())
    @rule(data=st.data(), value=st.booleans())
    def flag(self, data, value: bool) -> None:
        targets = self._live_targets()
        ids = data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3, unique=True))
        self.wb.flag(ids, value)
        self.pending += [Op("flag", i, flagged=value) for i in ids]

    @precondition(lambda self: self._live_targets())
    @rule(data=st.data(), reuse=st.booleans())
    def rename(self, data, reuse: bool) -> None:
        target = data.draw(st.sampled_from(self._live_targets()))
        # Now and then a name another seller of ours gave up (push must order them).
        model = self._visible_model()
        freed = [next(iter(model[i]["name"])) for i in self.order
                 if i in model and model[i]["live"] == {False} and len(model[i]["name"]) == 1]
        freed = [n for n in freed if normalize_name(n) not in self._visible_names()]
        name = data.draw(st.sampled_from(freed)) if reuse and freed else self._fresh("Ours")
        current = self._visible_model()[target]["name"]
        self.wb.rename(target, name)
        if current != {name}:
            self.pending.append(Op("rename", target, name=name))

    @precondition(lambda self: len(self._live_targets()) > 3)
    @rule(data=st.data())
    def delete(self, data) -> None:
        target = data.draw(st.sampled_from(self._live_targets()))
        self.wb.delete(target)
        self.pending.append(Op("delete", target))

    @precondition(lambda self: self._deleted_targets())
    @rule(data=st.data())
    def restore(self, data) -> None:
        target = data.draw(st.sampled_from(self._deleted_targets()))
        seen = self._visible_model()[target]
        if len(seen["name"]) != 1 or len(seen["flagged"]) != 1:
            return  # what it would come back as is not settled in the model
        name, flagged = next(iter(seen["name"])), next(iter(seen["flagged"]))
        if normalize_name(name) in self._visible_names():
            return  # refused locally (name taken): tests/changes covers that
        self.wb.restore(target)
        self.pending.append(Op("restore", target, name=name, flagged=flagged))

    @rule()
    def create(self) -> None:
        name = self._fresh("Ours")
        (local,) = self.wb.create([name])
        assert local.startswith("local:")
        self.pending.append(Op("create", local, name=name))
        self.order.append(local)

    # -- someone else ----------------------------------------------------------------------

    def _server_live(self) -> list[str]:
        return [i for i in self.order if i in self.server and self.server[i].live]

    @precondition(lambda self: self._server_live())
    @rule(data=st.data(), value=st.booleans())
    def other_flags(self, data, value: bool) -> None:
        target = data.draw(st.sampled_from(self._server_live()))
        self.other.update_seller(target, flagged=value)
        self.server[target] = replace(self.server[target], flagged=value)

    @precondition(lambda self: self._server_live())
    @rule(data=st.data())
    def other_renames(self, data) -> None:
        target = data.draw(st.sampled_from(self._server_live()))
        name = self._fresh("Theirs")
        self.other.update_seller(target, name=name)
        self.server[target] = replace(self.server[target], name=name)

    @precondition(lambda self: len(self._server_live()) > 3)
    @rule(data=st.data())
    def other_deletes(self, data) -> None:
        target = data.draw(st.sampled_from(self._server_live()))
        self.other.delete_seller(target)
        self.server[target] = replace(self.server[target], live=False)

    @precondition(lambda self: any(o.name for o in self.pending))
    @rule(data=st.data())
    def other_takes_a_name_we_queued(self, data) -> None:
        name = data.draw(st.sampled_from(sorted({o.name for o in self.pending if o.name})))
        taken = {normalize_name(s.name) for s in self.server.values() if s.live}
        if normalize_name(name) in taken:
            return
        row = self.other.create_seller(name)
        self.server[row["id"]] = S(row["display_name"], False, True)
        self.order.append(row["id"])

    @rule()
    def a_collection_run_finds_sellers(self) -> None:
        category = self.admin.categories()[0]["id"]
        run = self.admin.create_run(self._fresh("Run"), [category])
        self.admin.start_run(run["id"])
        deadline = time.monotonic() + 60  # a loaded machine slows the run
        while self.admin.get_run(run["id"])["status"] != "completed":
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.02)
        now = self._read_server()
        for seller_id, state in now.items():
            if seller_id in self.server:
                assert state == self.server[seller_id], "a run changed a name or a flag"
            else:
                self.server[seller_id] = state  # found new by the run

    # -- pull, push, sync ----------------------------------------------------------------------

    @rule()
    def pull_under_the_queue(self) -> None:
        queued = [i for i in self._server_live() if i in {o.target for o in self.pending}]
        if queued:  # the rebase case: first the server's row moves under a queued change
            target, name = queued[0], self._fresh("Theirs")
            flagged = not self.server[target].flagged
            self.other.update_seller(target, name=name, flagged=flagged)
            self.server[target] = replace(self.server[target], name=name, flagged=flagged)
        _pull_only(self.wb)
        self.cached = dict(self.server)
        self.allowed = self._exact(self.cached)

    @rule()
    def push(self) -> None:
        report = self.wb.push(wait=5.0)
        assert report.still_pending == 0, report
        self._apply_pushed()

    @rule()
    def sync(self) -> None:
        self.wb.sync(progress=False)
        self._apply_pushed()
        self.cached = dict(self.server)
        self.allowed = self._exact(self.cached)

    def _apply_pushed(self) -> None:
        """Our queue as the server takes it, in order; what it confirms may show at once."""
        created: dict[str, str] = {}
        failed = 0
        either = 0  # changes that may be confirmed or refused (see _server_takes)
        refused: list[Op] = []
        touched: dict[str, set[str]] = {}
        for op in self.pending:
            target = created.get(op.target, op.target)
            if target.startswith("local:") and op.kind != "create":
                failed += 1  # its create was refused: so is everything after it
                refused.append(op)
                continue
            state = self.server.get(target)
            if op.kind == "flag" and state and not state.live and state.flagged == op.flagged:
                # A flag the server's row already has, of a seller deleted there: a bulk
                # call that skips it changed what was expected, so it may pass as done;
                # alone it is a 404. Either way nothing changes on the server.
                either += 1
                continue
            outcome = self._server_takes(op, target)
            if outcome is None:
                failed += 1
                refused.append(op)
                continue
            if op.kind == "create":
                created[op.target] = outcome
                self.order[self.order.index(op.target)] = outcome
                target = outcome
            # A restore's name and flag show until the server answers; then the
            # server's (it only undeletes): only "live" is ours for sure.
            confirmed = ("live",) if op.kind == "restore" else SETS[op.kind]
            touched.setdefault(target, set()).update(confirmed)
        self.pending = []
        self.order = [i for i in self.order if not i.startswith("local:")]  # refused creates
        shown = self.wb.failed()
        new = len(shown) - getattr(self, "failed_before", 0)
        assert failed <= new <= failed + either, (
            refused, shown[["kind", "seller_id", "change", "error"]].to_string())
        self.failed_before = len(shown)
        for seller_id, fields in touched.items():
            now = self.server[seller_id]
            allowed = self.allowed.setdefault(seller_id, {f: set() for f in FIELDS})
            for f in FIELDS:
                if f in fields:
                    allowed[f] = {getattr(now, f)}  # set by us and confirmed: exactly that
                else:
                    allowed[f].add(getattr(now, f))  # the server's answer may show it

    def _server_takes(self, op: Op, target: str) -> str | None:
        """Apply one change to the model server; the seller id, or None if refused."""
        state = self.server.get(target)
        live_names = {normalize_name(s.name): i for i, s in self.server.items() if s.live}
        if op.kind == "create":
            if normalize_name(op.name or "") in live_names:
                return None
            (new_id,) = [i for i, s in self._read_server().items()
                         if s.live and normalize_name(s.name) == normalize_name(op.name or "")]
            self.server[new_id] = S(op.name or "", False, True)
            return new_id
        assert state is not None
        if op.kind == "delete":
            self.server[target] = replace(state, live=False)
        elif op.kind == "restore":
            if not state.live:
                if live_names.get(normalize_name(state.name), target) != target:
                    return None
                self.server[target] = replace(state, live=True)
        elif not state.live:
            return None  # a flag or rename of a seller deleted there: 404
        elif op.kind == "flag":
            self.server[target] = replace(state, flagged=bool(op.flagged))
        else:
            if live_names.get(normalize_name(op.name or ""), target) != target:
                return None
            self.server[target] = replace(state, name=op.name or "")
        return target

    # -- what the analyst sees ---------------------------------------------------------------

    @invariant()
    def the_analyst_sees_the_model(self) -> None:
        frame = self.wb.sellers(include_deleted=True)
        seen = {
            row.id: S(row.display_name, bool(row.flagged), row.deleted_at is None or
                      str(row.deleted_at) == "NaT")
            for row in frame.itertuples()
        }
        model = self._visible_model()
        live_model = {i for i, f in model.items() if f["live"] == {True}}
        live_seen = {i for i, s in seen.items() if s.live}
        loose = {i for i, f in model.items() if len(f["live"]) > 1}
        assert live_seen - loose == live_model - loose, (live_seen ^ live_model) - loose
        for seller_id in live_seen & live_model:
            for f in ("name", "flagged"):
                value = getattr(seen[seller_id], f)
                assert value in model[seller_id][f], (seller_id, f, value, model[seller_id][f])


def test_random_interleavings_match_the_model() -> None:
    Interleavings.TestCase.settings = settings(
        max_examples=8, stateful_step_count=20, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck),
    )
    machine = Interleavings.TestCase()
    machine.runTest()


class Converged(Interleavings):
    """The same, ending with a push and a sync: the cache then equals the server, and
    both equal the model."""

    def teardown(self) -> None:
        try:
            self.wb.sync(progress=False)
            self._apply_pushed()
            assert self.wb.status()["pending"] == 0
            assert self._read_server() == self.server
            seen = {r.id: (r.display_name, bool(r.flagged)) for r in self.wb.sellers().itertuples()}
            assert seen == {i: (s.name, s.flagged) for i, s in self.server.items() if s.live}
            assert_cache_equals_server(self.wb.store, self.srv)
        finally:
            super().teardown()


def test_after_push_and_sync_the_cache_equals_the_server() -> None:
    Converged.TestCase.settings = settings(
        max_examples=5, stateful_step_count=15, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck),
    )
    Converged.TestCase().runTest()
