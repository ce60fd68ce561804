"""Text requests: SendTargets (RFC 7143 Appendix D), answered in pieces when long.

An answer longer than the initiator's MaxRecvDataSegmentLength goes out in
parts: each but the last has the C bit and a TTT the initiator sends back
(with an empty Text Request) to get the next. A normal session may list only
its own target; a discovery session, the targets this initiator may use.
"""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.core import ConnectionCore
from target.iscsi.keys import KeyError_, encode_keys, parse_keys
from target.iscsi.pdu import RESERVED_TAG, Pdu, RejectReason
from target.iscsi.tasks import ScsiTask


class TextRequests(ConnectionCore):
    def _text(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if self._text_left is not None and pdu.ttt == self._text_left[0]:
            text = self._text_left[1]
        else:
            try:
                pairs = parse_keys(pdu.data)
            except KeyError_:
                self._reject(pdu, RejectReason.PROTOCOL_ERROR)
                return
            answers: list[tuple[str, str]] = []
            for key, value in pairs:
                if key == "SendTargets":
                    answers += self._send_targets(value)
                else:
                    answers.append((key, "NotUnderstood"))
            text = encode_keys(answers)
        limit = self.params.initiator_max_recv_data_segment_length
        chunk, rest = text[:limit], text[limit:]
        ttt = RESERVED_TAG
        self._text_left = None
        if rest:
            ttt = self._next_ttt()
            self._text_left = (ttt, rest)
        self._emit(wire.text_response(not rest, pdu.lun_field, pdu.itt, ttt, self._advance_statsn(), self._expcmdsn,
                                      self._maxcmdsn()), chunk)

    def _send_targets(self, value: str) -> list[tuple[str, str]]:
        if value == "All":
            if self.target is not None:  # a normal session may only list its own target
                specs = [self.target]
            else:
                specs = self.directory.visible_to(self.initiator)
        elif value == "":
            specs = [self.target] if self.target else []
        else:
            spec = self.directory.find(value)
            specs = [spec] if spec is not None and spec.allows(self.initiator) else []
        answers: list[tuple[str, str]] = []
        for spec in sorted(specs, key=lambda s: s.name):
            answers.append(("TargetName", spec.name))
            for address in self.portal_addresses:
                answers.append(("TargetAddress", f"{address},{spec.portal_group_tag}"))
        return answers
