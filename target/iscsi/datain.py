"""Answers to SCSI commands: Data-In segmentation with phase-collapsed status, or a SCSI Response.

READ data goes out in Data-In PDUs of at most the initiator's
MaxRecvDataSegmentLength, none crossing a MaxBurstLength boundary (the F bit
ends each burst); the last carries the status and residual (S bit), so a good
READ needs no SCSI Response. Anything else (writes, errors, no data) gets a
SCSI Response, with sense data when there is any.

This is the Data-In hot path: one header allocation and one pack per PDU;
the data itself is sliced (a view, or Pieces the shell may sendfile), never copied
unless a data digest needs the bytes.
"""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.core import ConnectionCore
from target.iscsi.tasks import ScsiTask
from target.scsi.sense import GOOD, ScsiResult
from target.stores.pieces import Pieces


class DataIn(ConnectionCore):
    def _send_result(self, task: ScsiTask, result: ScsiResult) -> None:
        expected = task.expected_length
        datasn = 0
        good = result.status == GOOD and not result.sense
        if task.read and result.data and good:
            data = result.data
            if isinstance(data, Pieces):
                if self.params.data_digest:  # the digest needs the bytes in hand
                    data = memoryview(data.tobytes())
            elif not isinstance(data, memoryview):
                data = memoryview(data)
            total = len(data)
            send = min(total, expected)
            residual_flag, residual = _residual(expected, total)
            chunk = max(512, self.params.initiator_max_recv_data_segment_length)
            burst = self.params.max_burst_length
            # Neither changes while one command's Data-In goes out: read them once.
            expcmdsn, maxcmdsn = self._expcmdsn, self._maxcmdsn()
            lun_field, itt = task.lun_field, task.itt
            offset = 0
            while offset < send:
                length = min(chunk, send - offset, burst - offset % burst)
                if offset + length >= send:  # the last: status phase-collapsed into it (S bit)
                    bhs = wire.data_in(0x81 | residual_flag, result.status, lun_field, itt, self._advance_statsn(),
                                       expcmdsn, maxcmdsn, datasn, offset, residual)
                else:
                    bhs = wire.data_in(0x80 if (offset + length) % burst == 0 else 0, 0, lun_field, itt, 0, expcmdsn,
                                       maxcmdsn, datasn, offset, 0)
                datasn += 1
                self._emit(bhs, data[offset : offset + length])
                offset += length
            if send:
                return
        if task.write and result.data_out_length is not None:
            flag, residual = _residual(expected, result.data_out_length)
        elif task.read:
            flag, residual = _residual(expected, len(result.data) if good else 0)
        else:
            flag, residual = 0, 0
        bhs = wire.scsi_response(flag, result.status, task.itt, self._advance_statsn(), self._expcmdsn,
                                 self._maxcmdsn(), datasn or task.r2tsn, residual)
        payload = len(result.sense).to_bytes(2, "big") + result.sense if result.sense else b""
        self._emit(bhs, payload)


def _residual(expected: int, actual: int) -> tuple[int, int]:
    """(flag bits, residual count): O (0x04) overflow, U (0x02) underflow."""
    if actual > expected:
        return 0x04, actual - expected
    if actual < expected:
        return 0x02, expected - actual
    return 0, 0
