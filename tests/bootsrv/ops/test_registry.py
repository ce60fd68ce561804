"""The operations table: names, where each runs, and what a caller gets back for every kind
of failure (the admin socket and the web API answer exactly this)."""

import asyncio
import logging
import threading

import pytest

from bootsrv.config import ConfigError
from bootsrv.ops import OPERATIONS, dispatch, edit_file, operation
from bootsrv.runtime.view import ApplianceView
from tests.support.appliance import opened_appliance


def test_the_table_names_every_operation_once_and_edits_run_on_the_loop():
    assert {"status", "sessions", "clients", "snapshot.create", "snapshot.list", "snapshot.export",
            "schedule.run", "config.reload", "config.edit", "client.forget", "client.add",
            "target.create", "disk.add", "schedule.add"} <= set(OPERATIONS)
    for op in OPERATIONS.values():
        assert op.name and (op.on_loop or not op.edits_config)
    with pytest.raises(RuntimeError, match="registered twice"):
        operation("status")(lambda view, args: None)


def test_unknown_operations_and_bad_arguments_are_refused_with_the_list(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        for name, args in (("no.such", {}), ("status", ["not", "an", "object"])):
            reply = asyncio.run(dispatch(view, name, args))
            assert reply["ok"] is False and "operations: client.add, client.forget" in reply["error"]


def test_expected_failures_are_one_line_answers(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        reply = asyncio.run(dispatch(view, "snapshot.create", {"disk": "nope"}))
        assert reply == {"ok": False, "error": reply["error"]} and "nope" in reply["error"]
        assert asyncio.run(dispatch(view, "snapshot.delete", {}))["ok"] is False  # a missing argument
        assert asyncio.run(dispatch(view, "schedule.run", {"name": "nightly"})) == {
            "ok": False, "error": "no schedule named 'nightly'"}


def test_a_bug_in_an_operation_is_logged_with_its_traceback_and_the_server_goes_on(tmp_path, caplog):
    threads = []

    @operation("test.broken")
    def broken(view, args):
        threads.append(threading.current_thread())
        return 1 // 0

    try:
        with opened_appliance(tmp_path) as app, caplog.at_level(logging.ERROR, "bootsrv.ops"):
            view = ApplianceView.of(app)
            reply = asyncio.run(dispatch(view, "test.broken", {}))
            assert reply == {"ok": False, "error": "internal error: integer division or modulo by zero"}
            assert caplog.records[-1].exc_info[0] is ZeroDivisionError
            assert threads != [threading.main_thread()]  # not on_loop: a worker thread ran it
            assert asyncio.run(dispatch(view, "status", {}))["ok"] is True
    finally:
        del OPERATIONS["test.broken"]


def test_editing_the_file_alone_names_what_is_wrong(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("# the lab\n")
    with pytest.raises(ConfigError, match="no configuration edit 'status'; edits: client.add, client.remove"):
        edit_file(path, "status", {})
    with pytest.raises(ConfigError, match="client.add: mac is needed"):
        edit_file(path, "client.add", {"name": "ws01"})
    assert path.read_text() == "# the lab\n"
