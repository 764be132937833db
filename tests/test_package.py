"""The package as installed: what `import sellerbench` loads, where data lives, what the
package carries, and the settings table the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sellerbench import settings
from sellerbench.errors import ConfigError
from sellerbench.reports import report as reports

ROOT = Path(__file__).resolve().parents[1]


def test_import_loads_the_client_only(tmp_path: Path) -> None:
    code = (
        "import json, sys; import sellerbench; "
        "heavy = ('fastapi', 'uvicorn', 'papermill', 'nbconvert', 'jupyterlab', "
        "'jupyter_server', 'jupysql', 'sql', 'matplotlib', 'sellerbench.server'); "
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=True)
    assert json.loads(done.stdout) == []


def test_dependencies_are_split_by_what_people_run() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
             for d in project["dependencies"]}
    assert names == {"duckdb", "pandas", "pyarrow", "httpx", "httpx-sse", "ipywidgets",
                     "ipydatagrid", "anywidget", "tqdm", "orjson"}
    extras = project["optional-dependencies"]
    assert {"fastapi", "uvicorn"} <= {d.split(">")[0] for d in extras["server"]}
    assert {"papermill", "nbconvert", "matplotlib"} <= {d.split(">")[0] for d in extras["report"]}
    assert "jupyterlab" in {d.split(">")[0] for d in extras["lab"]}
    assert extras["all"] == ["sellerbench[server,report,lab]"]
    assert project["requires-python"] == ">=3.11"
    every = json.dumps([project["dependencies"], extras])
    pins = (ROOT / "constraints.txt").read_text(encoding="utf-8").lower()
    assert "jupysql" not in every and "jupysql" not in pins and "sqlalchemy" not in pins


def test_the_report_notebook_is_package_data() -> None:
    assert reports.NOTEBOOK.is_file()
    assert reports.NOTEBOOK.parent == Path(reports.__file__).resolve().parent
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = config["tool"]["setuptools"]["package-data"]
    assert reports.NOTEBOOK.name in package_data["sellerbench.reports"]
    notebook = json.loads(reports.NOTEBOOK.read_text(encoding="utf-8"))
    tags = [c["metadata"].get("tags", []) for c in notebook["cells"]]
    assert ["parameters"] in tags
    text = " ".join("".join(c["source"]) for c in notebook["cells"]
                    if c["cell_type"] == "markdown")
    assert "sellerbench report" not in text and "papermill" not in text


# -- where data lives ----------------------------------------------------------------------


def test_the_data_folder_follows_a_documented_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SELLERBENCH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    if sys.platform.startswith("linux"):
        assert settings.data_dir() == tmp_path / "user" / ".local" / "share" / "sellerbench"
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert settings.data_dir() == tmp_path / "xdg" / "sellerbench"
        monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the spec says: ignore it
        assert settings.data_dir() == tmp_path / "user" / ".local" / "share" / "sellerbench"
    monkeypatch.setenv("SELLERBENCH_HOME", str(tmp_path / "home"))
    assert settings.data_dir() == tmp_path / "home"
    assert settings.default_cache() == tmp_path / "home" / "sellerbench.duckdb"
    assert settings.resolve("cache") == str(tmp_path / "home" / "sellerbench.duckdb")
    assert settings.data_dir().is_absolute()


def test_the_demo_lives_in_the_data_folder_not_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sellerbench as sb

    home = tmp_path / "home"
    monkeypatch.setenv("SELLERBENCH_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    package = Path(sb.__file__).resolve().parent
    before = {p for p in package.rglob("*") if "__pycache__" not in p.parts}
    wb = sb.demo(n=50)
    try:
        assert wb.store.path.is_relative_to(home / "demo")
        assert wb._server.data_dir.is_relative_to(home / "demo")
    finally:
        wb.close()
    assert not (tmp_path / "data").exists()
    after = {p for p in package.rglob("*") if "__pycache__" not in p.parts}
    assert after == before


# -- the settings table ------------------------------------------------------------------


def test_readme_configuration_table_is_the_settings_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in readme


def test_every_setting_is_checked_and_names_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELLERBENCH_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"^SELLERBENCH_LOCK_TIMEOUT is 'soon'; it accepts"):
        settings.resolve("lock_timeout")
    with pytest.raises(ConfigError, match=r"^the argument lock_timeout= is 'x'"):
        settings.resolve("lock_timeout", "x")
    with pytest.raises(ConfigError, match=r"^--lock-timeout is 'nan'"):
        settings.value("lock_timeout", "nan", origin="flag")
    monkeypatch.delenv("SELLERBENCH_LOCK_TIMEOUT")
    assert settings.value("lock_timeout") == 10.0
    assert settings.resolve("auto_push", False) == "0"
    for word, meant in (("yes", True), ("OFF", False), ("1", True), ("false", False)):
        assert settings.value("auto_push", word) is meant
    with pytest.raises(ConfigError, match="<hidden>"):
        settings.value("token", "has a space")
    assert repr(settings.value("token", "sb_x")) == "'<hidden>'"
    assert settings.value("api_url", "http://h:1/") == "http://h:1"


def test_connect_refuses_a_bad_variable_with_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sellerbench as sb

    for name, text in (("SELLERBENCH_TIMEOUT", "abc"), ("SELLERBENCH_LOCK_TIMEOUT", "soon"),
                       ("SELLERBENCH_AUTO_PUSH", "maybe")):
        with monkeypatch.context() as patch:
            patch.setenv(name, text)
            with pytest.raises(sb.ConfigError, match=name):
                sb.connect("http://127.0.0.1:9", "t", tmp_path / "c.duckdb").close()
    assert not (tmp_path / "c.duckdb").exists() or os.path.getsize(tmp_path / "c.duckdb") > 0
