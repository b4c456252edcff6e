"""The node agent's zygote: a forked ``knserve queue-proxy`` looks and behaves like an exec'd one.

Real processes: a zygote started as the agent starts it, real queue-proxies on free
loopback ports, their /proc entries, signals and exit codes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.processes import ContainerProcess, StartError
from node.zygote import Zygote, ZygoteUnavailable
from tests.support.ports import free_port

BIN = Path(sys.executable).parent


def queue_proxy_env(namespace: str) -> dict[str, str]:
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "USER_PORT": str(free_port()),
        "QUEUE_SERVING_PORT": str(free_port()),
        "QUEUE_ADMIN_PORT": str(free_port()),
        "AUTOSCALING_STATS_PORT": str(free_port()),
        "USER_METRICS_PORT": str(free_port()),
        "SERVING_POD_IP": "127.0.0.1",
        "SERVING_POD": "pod-under-test",
        "SERVING_NAMESPACE": namespace,
        "DRAIN_QUIET_PERIOD_SECONDS": "0",
    }


@pytest.fixture
async def zygote() -> AsyncIterator[Zygote]:
    started = Zygote()
    started.start()
    async with asyncio.timeout(30):
        while not started.serves(["knserve", "queue-proxy"], {"PATH": str(BIN)}):
            await asyncio.sleep(0.02)
    yield started
    started.stop()


async def wait_http(port: int, path: str) -> int:
    def fetch() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)

    async with asyncio.timeout(20):
        while True:
            try:
                return await asyncio.to_thread(fetch)
            except OSError:
                await asyncio.sleep(0.05)


def proc_words(pid: int, name: str) -> list[str]:
    return [word.decode() for word in Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0") if word]


async def test_a_forked_queue_proxy_is_the_container_it_was_asked_for(zygote: Zygote, tmp_path: Path) -> None:
    env = queue_proxy_env("zygote-a")
    log_file = tmp_path / "queue-proxy.log"
    process = await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path, log_file=log_file)

    # It serves: its metrics endpoint answers (the app behind it is absent, which is fine).
    assert await wait_http(int(env["USER_METRICS_PORT"]), "/metrics") == 200
    # What ps, /proc and the process table show is the container, not the zygote.
    assert proc_words(process.pid, "cmdline") == ["knserve", "queue-proxy"]
    assert dict(word.split("=", 1) for word in proc_words(process.pid, "environ")) == env
    assert Path(f"/proc/{process.pid}/comm").read_text().strip() == "knserve"
    assert os.readlink(f"/proc/{process.pid}/cwd") == str(tmp_path)
    # Its own session (so the agent can signal the whole group), stdin empty, output in the log.
    assert os.getsid(process.pid) == process.pid == os.getpgid(process.pid)
    assert os.readlink(f"/proc/{process.pid}/fd/0") == os.devnull
    assert os.readlink(f"/proc/{process.pid}/fd/1") == os.readlink(f"/proc/{process.pid}/fd/2") == str(log_file)
    assert "queue-proxy serving on 127.0.0.1" in log_file.read_text()
    # Nothing of the zygote leaks in: none of its sockets or pipes is open in the child.
    child_fds = {os.readlink(f"/proc/{process.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{process.pid}/fd")}
    assert not child_fds & _zygote_channels(zygote)

    # SIGTERM drains and exits 0; the exit code reaches the agent.
    assert await asyncio.wait_for(process.stop(grace=10), 20) == 0


def _zygote_channels(zygote: Zygote) -> set[str]:
    """The sockets and pipes the zygote process holds open (``socket:[inode]``, ``pipe:[inode]``)."""
    assert zygote._process is not None
    pid = zygote._process.pid
    targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    channels = {target for target in targets if target.startswith(("socket:", "pipe:"))}
    assert channels  # at least its channel to the agent and its signal pipe
    return channels


async def test_exit_codes_and_signals_reach_the_agent_as_for_an_execd_container(zygote: Zygote, tmp_path: Path) -> None:
    env = queue_proxy_env("zygote-b")
    bad = await zygote.spawn(["knserve", "queue-proxy", "surplus"], env=env, cwd=tmp_path, log_file=tmp_path / "bad.log")
    assert await asyncio.wait_for(bad.wait(), 20) == 2
    assert "unexpected arguments 'surplus'" in (tmp_path / "bad.log").read_text()

    # Children that exit at once while the agent is busy: each exit still reaches its waiter
    # (the exit report then comes in the same read as the reply that names the pid).
    spawning = [asyncio.ensure_future(zygote.spawn(["knserve", "queue-proxy", "--help"], env=env, cwd=tmp_path,
                                                   log_file=tmp_path / f"q{i}.log")) for i in range(4)]
    await asyncio.sleep(0)  # the requests go out
    time.sleep(1.0)  # a busy event loop: replies and exits pile up unread
    quick = await asyncio.gather(*spawning)
    assert await asyncio.wait_for(asyncio.gather(*(child.wait() for child in quick)), 20) == [0] * 4

    killed = await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path, log_file=tmp_path / "k.log")
    await wait_http(int(env["USER_METRICS_PORT"]), "/metrics")
    killed.signal_group(signal.SIGKILL)
    assert await asyncio.wait_for(killed.wait(), 20) == -signal.SIGKILL


async def test_only_this_installations_knserve_with_a_preloaded_command_is_forked(zygote: Zygote,
                                                                                  tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    assert zygote.serves(["knserve", "queue-proxy"], env)
    assert zygote.serves([str(BIN / "knserve"), "queue-proxy"], env)
    assert not zygote.serves(["knserve", "activator"], env)  # not preloaded: exec'd
    assert not zygote.serves(["knserve"], env)
    assert not zygote.serves(["python", "-m", "queueproxy"], env)
    assert not zygote.serves(["knserve", "queue-proxy"], {"PATH": "/usr/bin:/bin"})  # another knserve, or none
    other = tmp_path / "bin"
    other.mkdir()
    (other / "knserve").write_text("#!/bin/sh\nexit 0\n")
    (other / "knserve").chmod(0o755)
    assert not zygote.serves(["knserve", "queue-proxy"], {"PATH": f"{other}:{BIN}"})

    with pytest.raises(StartError, match="does not exist"):
        await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path / "missing", log_file=tmp_path / "x.log")


async def test_children_outlive_the_zygote_and_it_comes_back(zygote: Zygote, tmp_path: Path) -> None:
    env = queue_proxy_env("zygote-c")
    child = await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path, log_file=tmp_path / "c.log")
    await wait_http(int(env["USER_METRICS_PORT"]), "/metrics")
    assert zygote._process is not None
    zygote._process.kill()

    # The agent stops forking until the zygote is back, and execs meanwhile.
    async with asyncio.timeout(10):
        while zygote.serves(["knserve", "queue-proxy"], env):
            await asyncio.sleep(0.02)
    with pytest.raises(ZygoteUnavailable):
        await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path, log_file=tmp_path / "d.log")
    # The child kept serving; its end is still noticed (code unknown, as for an adopted one).
    assert await wait_http(int(env["USER_METRICS_PORT"]), "/metrics") == 200
    waited = child.wait()
    assert not waited.done()
    ContainerProcess(child.pid).signal_group(signal.SIGKILL)
    assert await asyncio.wait_for(waited, 20) is None

    async with asyncio.timeout(20):
        while not zygote.serves(["knserve", "queue-proxy"], env):
            await asyncio.sleep(0.05)
    again = await zygote.spawn(["knserve", "queue-proxy", "surplus"], env=env, cwd=tmp_path,
                               log_file=tmp_path / "e.log")
    assert await asyncio.wait_for(again.wait(), 20) == 2


async def test_a_code_change_on_disk_reloads_the_zygote_and_its_children_stay_its_own(zygote: Zygote,
                                                                                     tmp_path: Path) -> None:
    import queueproxy.server

    env = queue_proxy_env("zygote-d")
    running = await zygote.spawn(["knserve", "queue-proxy"], env=env, cwd=tmp_path, log_file=tmp_path / "r.log")
    await wait_http(int(env["USER_METRICS_PORT"]), "/metrics")
    assert zygote._process is not None
    zygote_pid = zygote._process.pid

    source = Path(queueproxy.server.__file__)
    before = source.stat()
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))  # as an edit would
    try:
        # The container asked for meanwhile is exec'd; the zygote reloads in place.
        with pytest.raises(ZygoteUnavailable, match="reloads"):
            await zygote.spawn(["knserve", "queue-proxy", "--help"], env=env, cwd=tmp_path, log_file=tmp_path / "x.log")
        async with asyncio.timeout(30):
            while not zygote.serves(["knserve", "queue-proxy"], env):
                await asyncio.sleep(0.02)
        assert zygote._process.pid == zygote_pid and zygote._process.poll() is None
        forked = await zygote.spawn(["knserve", "queue-proxy", "surplus"], env=env, cwd=tmp_path,
                                    log_file=tmp_path / "y.log")
        assert await asyncio.wait_for(forked.wait(), 20) == 2
        # The container forked before the reload is still the zygote's child: its end is reported.
        running.signal_group(signal.SIGKILL)
        assert await asyncio.wait_for(running.wait(), 20) == -signal.SIGKILL
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
