"""What the one-file binary runs: the same CLI as `python -m bootsrv`."""

import sys

from bootsrv.cli import main

if __name__ == "__main__":
    sys.exit(main())
