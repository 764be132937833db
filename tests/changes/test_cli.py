"""``sellerbench push``: the queue from the command line."""

from __future__ import annotations

from sellerbench.cli import main
from sellerbench.workbench import connect

from .mutation_model import server_live


def test_push_command_lists_and_sends_the_queue(make_server, tmp_path, capsys):
    server = make_server(n=20)
    cache = tmp_path / "cache.duckdb"
    token = server.tokens["analyst"]
    with connect(server.url, token, cache, auto_push=False) as wb:
        wb.sync(progress=False)
        ids = wb.sellers(flagged=False)["id"][:3].tolist()
        wb.flag(ids, True)
        wb.create(["From The Command Line"])
    options = ["--api-url", server.url, "--token", token, "--cache", str(cache)]

    assert main(["push", "--pending", *options]) == 0
    listed = capsys.readouterr().out
    assert listed.count("flagged=true") == 3 and "name=From The Command Line" in listed
    assert token not in listed

    assert main(["push", *options]) == 0
    out = capsys.readouterr().out
    assert "pushed 4 change(s)" in out and "0 still pending" in out
    assert main(["push", "--pending", *options]) == 0
    assert "nothing queued" in capsys.readouterr().out
    live = server_live(server.url, token)
    assert live["from the command line"] is False


def test_push_command_exit_code_says_when_work_is_left(make_server, tmp_path, capsys):
    server = make_server(n=20)
    cache = tmp_path / "cache.duckdb"
    token = server.tokens["analyst"]
    with connect(server.url, token, cache, auto_push=False) as wb:
        wb.sync(progress=False)
        wb.flag(wb.sellers()["id"][:1].tolist(), True)
    server.faults.drop_before_rate = 1.0
    options = ["--api-url", server.url, "--token", token, "--cache", str(cache)]
    assert main(["push", "--wait", "0", *options]) == 1
    assert "1 still pending" in capsys.readouterr().out
