"""Task management (RFC 7143 11.5, 4.2.3): ABORT TASK, the task-set and LU resets, target resets.

Affected tasks are marked aborted at once. One whose I/O is running cannot be
stopped: the TMF Response waits until every such task has finished (its own
answer is dropped), so the initiator never sees an aborted task complete after
the TMF was answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from target.iscsi import wire
from target.iscsi.cmdsn import CmdSNWindow, sn_diff
from target.iscsi.pdu import Pdu, lun_from_field
from target.iscsi.tasks import ScsiTask


class TmfFunction:
    ABORT_TASK = 1
    ABORT_TASK_SET = 2
    CLEAR_ACA = 3
    CLEAR_TASK_SET = 4
    LOGICAL_UNIT_RESET = 5
    TARGET_WARM_RESET = 6
    TARGET_COLD_RESET = 7
    TASK_REASSIGN = 8


class TmfResponse:
    COMPLETE = 0
    TASK_DOES_NOT_EXIST = 1
    LUN_DOES_NOT_EXIST = 2
    REASSIGN_NOT_SUPPORTED = 4
    NOT_SUPPORTED = 5


@dataclass(slots=True)
class PendingTmf:
    pdu: Pdu
    response: int
    waiting: set[ScsiTask]


class TaskManagement(CmdSNWindow):
    def _task_management(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        function = pdu.tmf_function
        affected: list[ScsiTask] = []
        response = TmfResponse.COMPLETE
        if function == TmfFunction.ABORT_TASK:
            task = self._tasks.get(pdu.ttt)
            ref = pdu.ref_cmdsn
            if task is not None:
                affected = [task]
            elif self._in_window(ref) and sn_diff(ref, pdu.cmdsn) < 0:
                # Never received (or held for an earlier CmdSN): RFC 7143 11.5.1 b says
                # to count that CmdSN as received, so the commands after it can run.
                held = self._pending_sn.get(ref)
                if held is None or held.itt == pdu.ttt:
                    self._pending_sn[ref] = None
                    self._run_pending(ready)
            else:  # already done and answered, or never sent: 11.5.1 c
                response = TmfResponse.TASK_DOES_NOT_EXIST
        elif function in (TmfFunction.ABORT_TASK_SET, TmfFunction.CLEAR_TASK_SET, TmfFunction.LOGICAL_UNIT_RESET):
            lun = lun_from_field(pdu.lun_field)
            affected = [t for t in self._tasks.values() if t.lun == lun]
            if function == TmfFunction.LOGICAL_UNIT_RESET and self.target is not None:
                self.target.device.reset(lun)
        elif function in (TmfFunction.TARGET_WARM_RESET, TmfFunction.TARGET_COLD_RESET):
            affected = list(self._tasks.values())
            if self.target is not None:
                self.target.device.reset(None)
        elif function == TmfFunction.TASK_REASSIGN:
            response = TmfResponse.REASSIGN_NOT_SUPPORTED
        else:
            response = TmfResponse.NOT_SUPPORTED
        waiting = set()
        for task in affected:
            task.aborted = True
            if task.executing:
                waiting.add(task)  # its I/O is running: answer once it has finished
            else:
                self._tasks.pop(task.itt, None)
        pending = PendingTmf(pdu, response, waiting)
        if waiting:
            self._pending_tmfs.append(pending)
        else:
            self._send_tmf_response(pending)

    def _release_tmfs(self, task: ScsiTask) -> None:
        for pending in list(self._pending_tmfs):
            pending.waiting.discard(task)
            if not pending.waiting:
                self._pending_tmfs.remove(pending)
                self._send_tmf_response(pending)

    def _send_tmf_response(self, pending: PendingTmf) -> None:
        if self.closing:
            return
        self._emit(wire.tmf_response(pending.response, pending.pdu.itt, self._advance_statsn(), self._expcmdsn,
                                     self._maxcmdsn()))
        if pending.pdu.tmf_function == TmfFunction.TARGET_COLD_RESET:
            self._close("target cold reset")
