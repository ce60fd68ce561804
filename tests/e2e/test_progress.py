"""Issue 20, acceptance 1: `disk convert` of a 2 GiB disk shows a progress line with
percentage, rate and time left that advances on a terminal, prints none without one, gives
JSON lines with --json, and with a server running is a task that task.list shows, done,
with its log."""

from __future__ import annotations

import json

import pytest

from bootsrv.admin import call
from tests.support.cli import run_cli
from tests.support.progress import cli_in_terminal, progress_lines, spread_disk
from tests.support.scratch import scratch_config
from tests.support.server import start_server
from tests.support.tools import run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return spread_disk(tmp_path_factory.mktemp("progress") / "source.raw")


def test_a_terminal_shows_percent_rate_and_time_left_advancing(source, tmp_path):
    target = tmp_path / "converted.vhd"
    output = cli_in_terminal("disk", "convert", source, target, "-c", tmp_path / "none.toml")
    drawn = progress_lines(output)
    assert f"convert {source} -> {target}" in output
    percents = [line.percent for line in drawn]
    assert percents == sorted(percents) and percents[-1] == 100, output
    assert len(set(percents)) >= 3, output  # it advanced: more than the first and the last
    measured = [line for line in drawn if 0 < line.percent < 100]
    assert all(line.rate[0].isdigit() and ":" in line.left for line in measured), output
    assert drawn[-1].total == "2.00G" and f"converted {source} -> {target}" in output
    run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", str(source), str(target)], timeout=300)


def test_without_a_terminal_there_is_no_progress_and_json_gives_lines(source, tmp_path):
    plain = run_cli("disk", "convert", source, tmp_path / "plain.vhd", "-c", tmp_path / "none.toml", check=True)
    assert plain.stdout == f"converted {source} -> {tmp_path / 'plain.vhd'}\n" and plain.stderr == ""
    as_json = run_cli("disk", "convert", source, tmp_path / "json.vhd", "--json", "-c", tmp_path / "none.toml",
                      check=True)
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert as_json.stderr == "" and len(lines) >= 2, as_json.stdout
    *running, final = lines
    assert {line["state"] for line in running} == {"running"} and final["state"] == "done"
    done = [line["done"] for line in lines]
    assert done == sorted(done) and final["done"] == final["total"] == 2 << 30
    assert all(line["kind"] == "disk.convert" and line["unit"] == "bytes" for line in lines)
    assert final["result"] == f"converted {source} -> {tmp_path / 'json.vhd'}"


def test_with_a_server_the_convert_is_its_task_done_with_a_log(source, tmp_path):
    server = start_server(tmp_path, scratch_config("16MiB"))
    try:
        target = tmp_path / "served.vhd"
        output = cli_in_terminal("disk", "convert", source, target, "-c", server.config, cwd=tmp_path)
        assert progress_lines(output)[-1].percent == 100, output
        tasks = call(tmp_path / "state", "task.list")["tasks"]
        assert [(t["kind"], t["state"], t["title"]) for t in tasks] == [
            ("disk.convert", "done", f"convert {source} -> {target}")]
        task = call(tmp_path / "state", "task.show", {"id": tasks[0]["id"]})
        assert task["done"] == task["total"] == 2 << 30 and task["result"] == f"converted {source} -> {target}"
        assert [line["message"] for line in task["log"]][::len(task["log"]) - 1] == [
            f"started: convert {source} -> {target}", f"done: converted {source} -> {target}"]
        again = run_cli("disk", "convert", source, target, "--json", "-c", server.config)
        assert again.returncode == 1 and again.stderr == f"bootsrv: {target} already exists\n", again
        failed = json.loads(again.stdout.splitlines()[-1])
        assert failed["state"] == "failed" and failed["error"] == f"{target} already exists"
        assert call(tmp_path / "state", "task.list")["tasks"][0]["state"] == "failed"
    finally:
        assert server.stop() == 0, server.log_text()
    assert "Traceback" not in server.log_text()
