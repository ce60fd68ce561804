"""Initiator PDUs for driving the sans-IO core in unit tests, built with target.iscsi.wire."""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.pdu import PduReader


def login_pdu(keys: list[str], *, csg: int = 0, nsg: int = 1, transit: bool = True, itt: int = 1,
              cmdsn: int = 1, tsih: int = 0, isid: bytes = wire.DEFAULT_ISID, cont: bool = False) -> bytes:
    data = b"".join(k.encode() + b"\0" for k in keys)
    bhs = wire.login_request(csg=csg, nsg=nsg, transit=transit, cont=cont, itt=itt, cmdsn=cmdsn, tsih=tsih,
                             isid=isid)
    return wire.frame(bhs, data)


def scsi_pdu(cdb: bytes, *, itt: int, cmdsn: int, read: bool = False, write: bool = False,
             length: int = 0, data: bytes = b"", lun: int = 0, immediate: bool = False) -> bytes:
    bhs = wire.scsi_command(cdb, itt=itt, cmdsn=cmdsn, read=read, write=write, length=length, lun=lun,
                            immediate=immediate)
    return wire.frame(bhs, data)


def data_out_pdu(*, itt: int, ttt: int, offset: int, data: bytes, final: bool = True, datasn: int = 0) -> bytes:
    return wire.frame(wire.data_out(itt=itt, ttt=ttt, offset=offset, datasn=datasn, final=final), data)


def parse_keys(data: bytes) -> dict[str, str]:
    return dict(item.decode().split("=", 1) for item in data.split(b"\0") if item)


def pdus_in_chunks(reader: PduReader, wire: bytes | bytearray, split: int) -> list:
    """Feed `wire` `split` bytes at a time, collecting every PDU as soon as it is whole."""
    pdus = []
    for i in range(0, len(wire), split):
        reader.feed(wire[i:i + split])
        while (pdu := reader.next_pdu()) is not None:
            pdus.append(pdu)
    return pdus


def responses(buffers) -> list:
    reader = PduReader(max_data_segment=1 << 24)
    reader.feed(b"".join(bytes(b) for b in buffers))
    out = []
    while (pdu := reader.next_pdu()) is not None:
        out.append(pdu)
    return out
