"""What the one-file binary runs: the same CLI as `python -m bootsrv`."""

import sys

from bootsrv.cli import main
from target.stores.rbd.cluster import use_host_librbd

if __name__ == "__main__":
    use_host_librbd()  # rbd: disks use the host's librbd (python3-rbd), when it has one
    sys.exit(main())
