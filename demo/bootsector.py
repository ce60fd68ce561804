"""A 512-byte stand-in for an operating system: a boot sector that prints a line
to the serial port and halts. Enough to prove a diskless machine booted its disk."""

from __future__ import annotations

MARKER = b"BOOTSRV-BOOT-SECTOR-RAN"


def marker_boot_sector(marker: bytes = MARKER) -> bytes:
    """16-bit code at 0x7c00 that writes `marker` to COM1 (0x3f8) and halts."""
    code = bytearray()
    code += b"\xfa\xfc"  # cli; cld
    code += b"\x31\xc0\x8e\xd8"  # xor ax,ax; mov ds,ax
    si_at = len(code)
    code += b"\xbe\x00\x00"  # mov si, message (patched below)
    code += b"\xba\xf8\x03"  # mov dx, 0x3f8
    loop = len(code)
    code += b"\xac"  # lodsb
    code += b"\x84\xc0"  # test al, al
    code += b"\x74\x03"  # jz done
    code += b"\xee"  # out dx, al
    code += bytes((0xEB, (loop - (len(code) + 2)) & 0xFF))  # jmp loop
    done = len(code)
    code += b"\xf4"  # hlt
    code += bytes((0xEB, (done - (len(code) + 2)) & 0xFF))  # jmp done
    message = 0x7C00 + len(code)
    code[si_at + 1: si_at + 3] = message.to_bytes(2, "little")
    code += marker + b"\r\n\0"
    sector = bytearray(512)
    sector[: len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)
