"""Schemathesis against the reference server's own /openapi.json, over loopback HTTP.

Stateless: every operation gets schema-valid and schema-breaking requests (bodies,
queries, path ids; real seller and run ids too, not only random ones) with an admin
token, and every answer is checked against the document: no 5xx, only documented
status codes and content types, bodies that match their schemas, malformed requests
refused, and auth not ignored (Schemathesis repeats requests without the token).

Stateful: Schemathesis chains operations along the links it infers from the document
(create a seller, then PATCH / flag / DELETE it; create a run, then start / pause /
cancel it) and checks every step the same way.

Left out on purpose:

- ``GET /collection/runs/{id}/activity``: a stream that stays open while its run is
  pending (tests/runs covers it, and tests/reliability/test_security its auth);
- unknown query parameters (ignored, as HTTP APIs do) and generated Authorization
  headers (the admin token is on every request; ``ignored_auth`` tries without it);
- the ``positive_data_acceptance`` check: the contract refuses some schema-valid values
  by design (a cursor the server never handed out is 400 INVALID_CURSOR, a name of
  blanks is 422 once trimmed, a run without a category is 400, as the origin answers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode

from sellerbench.server.embedded import EmbeddedServer, start

load_all_checks()
SKIPPED_CHECKS = CHECKS.get_by_names(["positive_data_acceptance"])
STREAM = re.compile(r"/activity$")
STATELESS = settings(
    max_examples=12, deadline=None, database=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)


# PostgreSQL runs the same checks with fewer examples (the CI budget).
EXAMPLES = {"sqlite": (12, 8), "postgresql": (6, 5)}  # (stateless, stateful) per storage


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, storage, db_url) -> Iterator[EmbeddedServer]:
    srv = start(n=60, seed=23, data_dir=tmp_path_factory.mktemp("fuzz_api"), run_speed=40,
                db=db_url(storage))
    srv.storage_kind = storage
    yield srv
    srv.stop()


def _load(srv: EmbeddedServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
    # The admin token goes on every request; generated cases leave the Authorization
    # header alone (ignored_auth still sends each request without it, and a wrong one).
    # Unknown query parameters are ignored, as HTTP APIs do: not generated.
    schema.config.generation.update(with_security_parameters=False,
                                    allow_extra_parameters=False)
    return schema.exclude(path_regex=STREAM.pattern)


def _known_ids(srv: EmbeddedServer) -> dict[str, list[str]]:
    headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=10) as http:
        sellers = [s["id"] for s in http.get("/sync/sellers", params={"limit": 5}).json()["items"]]
        runs = [r["id"] for r in http.get("/collection/runs", params={"limit": 5}).json()["runs"]]
    return {"seller_id": sellers, "run_id": runs}


def _strategy(operation: Any, known: dict[str, list[str]]) -> st.SearchStrategy:
    """Positive and negative cases, and cases aimed at ids that exist."""
    options = [operation.as_strategy(GenerationMode.POSITIVE),
               operation.as_strategy(GenerationMode.NEGATIVE)]
    wanted = set(re.findall(r"\{(\w+)\}", operation.path))
    if wanted and wanted <= known.keys():
        for index in range(2):
            fixed = {name: known[name][index] for name in wanted}
            options.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    return st.one_of(options)


def test_every_operation_holds_to_its_document(fuzz_server: EmbeddedServer) -> None:
    schema = _load(fuzz_server)
    known = _known_ids(fuzz_server)
    headers = {"Authorization": f"Bearer {fuzz_server.tokens['admin']}"}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(STATELESS, max_examples=EXAMPLES[fuzz_server.storage_kind][0])
        @given(case=_strategy(operation, known))
        def check(case: Any) -> None:
            response = case.call_and_validate(
                headers=headers, timeout=10, excluded_checks=SKIPPED_CHECKS
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            check()
        except Exception as exc:  # a FailureGroup names every distinct failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 22, operations
    assert not failures, "\n\n".join(failures)
    # Real work was reached, not only refusals: successes, 404s for ids, 422s for bodies.
    assert {200, 404, 422} <= statuses.keys(), statuses
    print(f"\nstatuses answered: {dict(sorted(statuses.items()))}")


def test_chains_of_operations_hold_to_the_document(fuzz_server: EmbeddedServer) -> None:
    schema = _load(fuzz_server)
    token = fuzz_server.tokens["admin"]

    steps: list[str] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            steps.append(f"{case.method} {case.operation.path}")
            return {"headers": {"Authorization": f"Bearer {token}"}, "timeout": 10}

        def validate_response(self, response: Any, case: Any, **kw: Any) -> None:
            case.validate_response(response, excluded_checks=SKIPPED_CHECKS,
                                   headers=kw.get("headers"))

    Workflow.run(settings=settings(
        max_examples=EXAMPLES[fuzz_server.storage_kind][1], stateful_step_count=6,
        deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck),
    ))
    assert len(steps) >= 20 and len(set(steps)) >= 6, steps
    print(f"\n{len(steps)} stateful steps over {len(set(steps))} operations")
