"""requirements.txt installed once per distinct file into a shared cache, with real pip
(offline: a wheel made here, --no-index)."""

from __future__ import annotations

import threading
import zipfile

import pytest

from functions import deps


def make_wheel(directory, name: str = "tinypkg", version: str = "1.0"):
    path = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}.py", "WORD = 'tiny'\n")
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", f"{name}.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


@pytest.fixture
def requirements(tmp_path):
    wheel = make_wheel(tmp_path)
    path = tmp_path / "requirements.txt"
    path.write_text(f"# offline\n--no-index\n{wheel}\n")
    return path


def test_the_key_ignores_comments_and_blank_lines():
    assert deps.requirements_key(b"a==1\n\n# note\nb==2  # why\n") == deps.requirements_key(b"a==1\nb==2\n")
    assert deps.requirements_key(b"a==1\n") != deps.requirements_key(b"a==2\n")


def test_only_comments_is_no_requirements(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# nothing yet\n\n")
    assert not deps.has_requirements(path)
    assert not deps.has_requirements(tmp_path / "missing.txt")


def test_installed_once_then_reused(tmp_path, requirements):
    cache = tmp_path / "cache"
    said: list[str] = []
    first = deps.ensure_installed(requirements, cache, log=said.append)
    assert (first / "tinypkg.py").is_file()
    assert said[0].startswith("installing requirements") and said[-1].endswith("installed")
    again: list[str] = []
    assert deps.ensure_installed(requirements, cache, log=again.append) == first
    assert again == [f"requirements {first.name} already installed; reusing them"]


def test_pods_starting_together_install_once(tmp_path, requirements):
    cache = tmp_path / "cache"
    logs: list[list[str]] = [[], [], []]
    threads = [threading.Thread(target=deps.ensure_installed, args=(requirements, cache), kwargs={"log": log.append})
               for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    installs = [log for log in logs if any(line.startswith("installing") for line in log)]
    assert len(installs) == 1, logs


def test_a_failed_install_says_what_pip_said(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n--find-links {tmp_path}\nno-such-package-anywhere==1.0\n")
    with pytest.raises(deps.InstallError, match="(?s)Installing requirements.txt failed.*no-such-package-anywhere"):
        deps.ensure_installed(requirements, tmp_path / "cache", log=lambda line: None)
    assert not list((tmp_path / "cache").glob("*/.complete"))
