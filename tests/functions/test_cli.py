"""`knserve func` without a cluster: new, and the checks deploy makes before it writes anything."""

from __future__ import annotations

import pytest

from functions import cli, templates
from functions.manifests import SpecError


@pytest.mark.parametrize("template", sorted(templates.HANDLERS))
def test_new_writes_a_deployable_directory(tmp_path, monkeypatch, template, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["new", "hello", "--template", template]) == 0
    assert sorted(p.name for p in (tmp_path / "hello").iterdir()) == ["func.yaml", "handler.py", "requirements.txt"]
    spec, files = cli.read_function(tmp_path / "hello")
    assert (spec.name, spec.style) == ("hello", templates.TEMPLATE_STYLES[template])
    assert set(files) == {"func.yaml", "handler.py", "requirements.txt"}
    assert "knserve func deploy hello" in capsys.readouterr().out


def test_new_refuses_a_name_kubernetes_refuses(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["new", "Get_Tax"]) == 1
    assert "'Get_Tax' cannot name a function" in capsys.readouterr().err
    assert not (tmp_path / "Get_Tax").exists()


def test_a_missing_handler_is_named(tmp_path):
    (tmp_path / "func.yaml").write_text("name: tax\nhandler: tax.py:main\n")
    (tmp_path / "other.py").write_text("x = 1\n")
    with pytest.raises(cli.CommandError, match="has no handler: expected tax.py"):
        cli.read_function(tmp_path)


def test_a_syntax_error_is_refused_with_file_and_line(tmp_path):
    (tmp_path / "handler.py").write_text("def main(data):\n    return (\n")
    with pytest.raises(cli.CommandError, match=r"handler.py, line 2"):
        cli.read_function(tmp_path)


def test_a_source_too_big_for_a_config_map(tmp_path):
    (tmp_path / "handler.py").write_text("def main(data):\n    return 1\n")
    (tmp_path / "model.bin").write_bytes(b"\0" * 1_100_000)
    with pytest.raises(SpecError, match="a ConfigMap holds at most.*largest: model.bin"):
        cli.read_function(tmp_path)


def test_sub_directories_with_modules_are_refused(tmp_path):
    (tmp_path / "handler.py").write_text("def main(data):\n    return 1\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("")
    with pytest.raises(cli.CommandError, match="lib/ is a directory"):
        cli.read_function(tmp_path)


def test_caches_and_hidden_files_stay_out(tmp_path):
    (tmp_path / "handler.py").write_text("def main(data):\n    return 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / ".env").write_text("SECRET=1\n")
    _, files = cli.read_function(tmp_path)
    assert set(files) == {"handler.py"}
