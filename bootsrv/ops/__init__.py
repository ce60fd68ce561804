"""The operations table (see registry): importing the package registers every operation."""

from bootsrv.ops import config, disks, images, snapshots, status  # noqa: F401  (each module registers its operations)
from bootsrv.ops import history, logs  # noqa: F401  (the dashboard's charts and log view)
from bootsrv.ops import wake  # noqa: F401  (client.wake)
from bootsrv.ops.registry import (OPERATIONS, Operation, OperationFailed, apply_edit, dispatch, edit_file, names,
                                 operation)
from bootsrv.ops import tasks  # noqa: F401,E402  (task.list, task.show)

__all__ = ["OPERATIONS", "Operation", "OperationFailed", "apply_edit", "dispatch", "edit_file", "names", "operation"]
