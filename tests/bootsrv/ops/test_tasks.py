"""Long operations as tasks: the registry hook, task.list and task.show over a real appliance."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from bootsrv.ops import OPERATIONS, dispatch, operation
from bootsrv.runtime.tasks import TaskLimit, TaskRegistry
from bootsrv.runtime.view import ApplianceView
from tests.support.appliance import opened_appliance

log = logging.getLogger("bootsrv.test")


def test_a_task_operation_is_listed_with_its_progress_log_and_result(tmp_path):
    release = threading.Event()

    @operation("test.copy", task=lambda args: f"copy {args['what']}")
    def copy(view, args, task):
        task.progress.set_total(4096)
        task.progress.advance(1024)
        log.warning("first quarter copied")
        release.wait(30)
        task.progress.advance(3072)
        if args["what"] == "bad":
            raise ValueError("bad is unreadable")
        return {"copied": 4096}

    async def scenario(view):
        started = (await dispatch(view, "test.copy", {"what": "good", "background": True}))["result"]["task"]
        assert started["state"] == "running" and started["kind"] == "test.copy" and started["title"] == "copy good"
        while (await dispatch(view, "task.show", {"id": started["id"]}))["result"]["done"] < 1024:
            await asyncio.sleep(0.01)
        running = (await dispatch(view, "task.show", {"id": started["id"]}))["result"]
        assert running["state"] == "running" and running["total"] == 4096 and running["unit"] == "bytes"
        release.set()
        while (await dispatch(view, "task.show", {"id": started["id"]}))["result"]["state"] == "running":
            await asyncio.sleep(0.01)
        failed = await dispatch(view, "test.copy", {"what": "bad"})  # waits for the end, as any operation
        assert failed == {"ok": False, "error": "bad is unreadable"}
        return (await dispatch(view, "task.list", {}))["result"]["tasks"], started["id"]

    try:
        with opened_appliance(tmp_path) as app:
            view = ApplianceView.of(app)
            tasks, first = asyncio.run(scenario(view))
            assert [t["title"] for t in tasks] == ["copy bad", "copy good"]  # newest first
            assert [t["state"] for t in tasks] == ["failed", "done"]
            assert tasks[0]["error"] == "bad is unreadable" and tasks[1]["result"] == {"copied": 4096}
            assert tasks[1]["done"] == tasks[1]["total"] == 4096 and tasks[1]["ended"] >= tasks[1]["started"]
            shown = asyncio.run(dispatch(view, "task.show", {"id": first}))["result"]
            messages = [line["message"] for line in shown["log"]]
            assert messages[0] == "started: copy good" and "first quarter copied" in messages
            assert messages[-1].startswith("done")
            missing = asyncio.run(dispatch(view, "task.show", {"id": "nope"}))
            assert missing["ok"] is False and "no task 'nope'" in missing["error"]
    finally:
        del OPERATIONS["test.copy"]


def test_the_registry_keeps_running_tasks_and_the_newest_finished_ones_and_bounds_both():
    tasks = TaskRegistry(keep=2, running=2)
    running = tasks.start("x.long", "long")
    for number in range(5):
        tasks.start("x.short", f"short {number}").finish(None)
    assert [t["title"] for t in tasks.list()] == ["short 4", "short 3", "long"]
    assert tasks.get(running.id).state == "running"
    tasks.start("x.long", "second")
    with pytest.raises(TaskLimit, match="2 tasks are running already"):
        tasks.start("x.long", "third")


def test_long_tasks_leave_the_other_operations_their_threads_and_stop_with_the_server(tmp_path):
    """Tasks work on threads of their own: however many run, an ordinary operation (the kind the
    dashboard and the boot path need) is answered; a stop makes running tasks end at their next
    step and fails the ones still waiting for a thread."""
    release = threading.Event()

    @operation("test.spin", task=lambda args: f"spin {args['n']}")
    def spin(view, args, task):
        task.progress.set_total(None)
        while True:  # reports per step, as every long loop does; stops only when told to
            task.progress.advance(1)
            release.wait(0.01)

    async def scenario(view):
        started = [(await dispatch(view, "test.spin", {"n": n, "background": True}))["result"]["task"]
                   for n in range(8)]
        answered = await asyncio.wait_for(dispatch(view, "snapshot.list", {}), 10)  # on a worker thread
        listed = await asyncio.wait_for(dispatch(view, "task.list", {}), 10)
        view.tasks.stop()
        await view.tasks.ended(timeout=10)
        return started, answered, listed, (await dispatch(view, "task.list", {}))["result"]["tasks"]

    try:
        with opened_appliance(tmp_path) as app:
            started, answered, listed, ended = asyncio.run(scenario(ApplianceView.of(app)))
        assert answered["ok"] and listed["ok"]
        assert len(started) == 8 and all(task["state"] == "running" for task in listed["result"]["tasks"])
        assert [task["state"] for task in ended] == ["failed"] * 8
        assert {task["error"] for task in ended} == {"stopped with the server"}
    finally:
        del OPERATIONS["test.spin"]
