"""Ceph RBD images as backing stores (`rbd:POOL/IMAGE`, `rbd:POOL/IMAGE@SNAP` read-only).

- cluster.py: the process's one cluster connection and the `[ceph]` settings;
- store.py: `RbdStore`, one image (or snapshot) as a BlockStore, and `create`;
- images.py: snapshots, protection and clones, the layers images and snapshots are made of;
- lock.py: one node at a time serves an image (its exclusive lock, claimed per session), and
  one node leads the scheduled snapshots of RBD disks (a RADOS lock);
- node.py: this process as the other nodes see it (name, Ceph address, fenced), cluster health.
"""

from target.stores.rbd.cluster import CephSettings, available, configure, connect, disconnect, is_rbd, split
from target.stores.rbd.store import RbdStore, create

__all__ = ["CephSettings", "RbdStore", "available", "configure", "connect", "create", "disconnect", "is_rbd",
           "split"]
