"""VHD virtual disks: fixed, dynamic and differencing (Microsoft's VHD format)."""

from target.stores.vhd.format import VhdFormatError
from target.stores.vhd.store import FixedVhdStore, VhdStore, open_vhd, read_footer

__all__ = ["FixedVhdStore", "VhdFormatError", "VhdStore", "open_vhd", "read_footer"]
