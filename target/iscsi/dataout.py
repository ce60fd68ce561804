"""SCSI Command intake and write data: immediate data, unsolicited Data-Out and R2T.

A write's data goes into one BufferPool buffer of its expected length. The
first `unsolicited_end` bytes may come unasked (immediate data, then Data-Out
with the reserved TTT, up to FirstBurstLength unless InitialR2T); the rest is
asked for with at most MaxOutstandingR2T R2Ts of at most MaxBurstLength each.
DataSN must run in order per R2T (and for the unsolicited data): at ERL 0 a gap
cannot be asked for again, so it ends the connection. A data digest error
keeps the task but fails it with CHECK CONDITION once its data is all in.

This is the Data-Out hot path: no allocation per PDU beyond the Pdu itself.
"""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.core import ConnectionCore, log
from target.iscsi.pdu import RESERVED_TAG, Opcode, Pdu, RejectReason, lun_from_field, SCSI_COMMAND_FIELDS, sink_fields
from target.iscsi.tasks import MAX_COMMAND_BYTES, ProtocolViolation, R2TState, ScsiTask
from target.scsi.sense import PROTOCOL_SERVICE_CRC_ERROR, CheckCondition

_DATA_OUT = int(Opcode.DATA_OUT)
_command_fields = SCSI_COMMAND_FIELDS.unpack_from


class DataOut(ConnectionCore):
    def _scsi_command(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if self.target is None:
            self._reject(pdu, RejectReason.PROTOCOL_ERROR)  # no SCSI in a discovery session
            return
        if pdu.itt in self._tasks:
            self._reject(pdu, RejectReason.TASK_IN_PROGRESS)
            return
        flags, lun_field, itt, expected_length, cmdsn, cdb = _command_fields(pdu.bhs, 1)
        if pdu.ahs:
            cdb = pdu.cdb  # an extended CDB
        task = ScsiTask(itt, lun_from_field(lun_field), lun_field, cdb, bool(flags & 0x40),
                        bool(flags & 0x20), expected_length, cmdsn)
        if task.read and task.write:
            self._send_result(task, CheckCondition((0x5, 0x24, 0x00)).result())  # no bidirectional commands
            return
        if not task.write:
            self._tasks[task.itt] = task
            task.executing = True
            ready.append(task)
            return
        if task.expected_length > MAX_COMMAND_BYTES:
            log.warning("%s: write of %d bytes refused", self.initiator, task.expected_length)
            self._send_result(task, CheckCondition((0x5, 0x24, 0x00)).result())
            return
        task.data = self._early_buffers.pop(pdu.itt, None) or self.buffers.take(task.expected_length)
        immediate = pdu.data
        if len(immediate) > task.expected_length:
            raise ProtocolViolation("immediate data beyond the expected transfer length")
        if immediate:
            if not pdu.in_place:
                task.data[: len(immediate)] = immediate
            task.received = len(immediate)
            task.digest_error = not pdu.data_digest_ok
            if task.digest_error:
                self._reject(pdu, RejectReason.DATA_DIGEST_ERROR)
        if self.params.initial_r2t:
            task.unsolicited_end = len(immediate)
        else:
            task.unsolicited_end = min(task.expected_length, self.params.first_burst_length)
        task.next_r2t_offset = task.unsolicited_end
        task.r2ts = {}
        self._tasks[task.itt] = task
        self._issue_r2ts(task)
        self._when_data_complete(task, ready)

    def _data_sink(self, bhs: bytes) -> memoryview | None:
        """Where the data segment of a large Data-Out or write command may land
        before the PDU is dispatched (see PduReader). Only into a buffer no
        running command uses, and only within its bounds: the PDU's checks come
        later, and one that fails them ends the connection or the task."""
        if self.closing or self.target is None or self.session is None:
            return None
        opcode, flags, length, itt, expected, offset = sink_fields(bhs)
        if opcode == _DATA_OUT:
            task = self._tasks.get(itt)
            if task is None or not task.write or task.executing or task.data is None:
                return None
            if offset + length > len(task.data):
                return None
            return task.data[offset : offset + length]
        if flags & 0x20 and itt not in self._tasks:  # a write command with immediate data
            if not length <= expected <= MAX_COMMAND_BYTES:
                return None
            buffer = self.buffers.take(expected)
            self._early_buffers[itt] = buffer
            return buffer[:length]
        return None

    def _data_out(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        task = self._tasks.get(pdu.itt)
        if task is None or not task.write or task.executing:
            # Data for a task that was aborted or already failed: nothing to do at ERL 0.
            log.debug("%s: Data-Out for unknown ITT 0x%08x ignored", self.initiator, pdu.itt)
            return
        offset, data = pdu.buffer_offset, pdu.data
        end = offset + len(data)
        ttt = pdu.ttt
        if ttt == RESERVED_TAG:
            if end > task.unsolicited_end:
                raise ProtocolViolation("unsolicited data beyond FirstBurstLength")
            r2t = None
            expected_datasn = task.unsolicited_datasn
            task.unsolicited_datasn += 1
        else:
            r2t = task.r2ts.get(ttt)
            if r2t is None or offset < r2t.offset or end > r2t.offset + r2t.length:
                raise ProtocolViolation(f"Data-Out outside its R2T (TTT 0x{ttt:08x}, offset {offset})")
            expected_datasn = r2t.next_datasn
            r2t.next_datasn += 1
        if pdu.datasn != expected_datasn:
            # ERL 0 cannot ask for the missing PDU again: the connection has failed.
            raise ProtocolViolation(f"Data-Out DataSN {pdu.datasn}, expected {expected_datasn}")
        assert task.data is not None
        if not pdu.in_place:
            task.data[offset:end] = data
        task.received += len(data)
        if not pdu.data_digest_ok:
            task.digest_error = True
            self._reject(pdu, RejectReason.DATA_DIGEST_ERROR)
        if r2t is not None:
            r2t.received += len(data)
            if r2t.received >= r2t.length or pdu.final:
                del task.r2ts[ttt]
                self._issue_r2ts(task)
        self._when_data_complete(task, ready)

    def _when_data_complete(self, task: ScsiTask, ready: list[ScsiTask]) -> None:
        if not task.data_complete or task.executing or task.aborted:
            return
        if task.digest_error:  # ERL 0: the data cannot be asked for again
            self.complete(task, CheckCondition(PROTOCOL_SERVICE_CRC_ERROR).result())
        else:
            task.executing = True
            ready.append(task)

    def _issue_r2ts(self, task: ScsiTask) -> None:
        limit = self.params.max_outstanding_r2t
        while len(task.r2ts) < limit and task.next_r2t_offset < task.expected_length:
            offset = task.next_r2t_offset
            length = min(self.params.max_burst_length, task.expected_length - offset)
            task.next_r2t_offset += length
            ttt = self._next_ttt()
            task.r2ts[ttt] = R2TState(offset, length)
            self._emit(wire.r2t(task.lun_field, task.itt, ttt, self._statsn, self._expcmdsn, self._maxcmdsn(),
                                task.r2tsn, offset, length))
            task.r2tsn += 1
