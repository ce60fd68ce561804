"""The configuration model: immutable objects every service reads instead of the TOML.

Invariants: every object is a frozen dataclass; paths are absolute (resolved against
the configuration file's folder by the parsers); names (IQNs, MACs) are normalised
to lower case. Each default is written here once and the parsers read it from here
(a schedule's defaults are those of `snapshots.schedule.Schedule` and `Keep`).
This module imports nothing heavy: the `Schedule` type lives with the scheduler
(`snapshots.schedule`, which pulls in APScheduler and the VHD stack) and is named
for type checkers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bootsrv.config.modes import DhcpMode, Digests, ImageUpdate, LogLevel, UnknownClients
from target.iscsi.params import DEFAULT_QUEUE_DEPTH

if TYPE_CHECKING:
    from snapshots.schedule import Schedule

DEFAULT_BASE_IQN = "iqn.2026-11.lan.bootsrv"
DEFAULT_STATE_DIR = "state"  # beside the configuration file (relative paths are resolved from there)


def default_of(cls: type, name: str) -> Any:
    """The default a model field declares, for parsers of tables whose model has required fields."""
    return cls.__dataclass_fields__[name].default  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ChapConfig:
    user: str
    secret: str


@dataclass(frozen=True, slots=True)
class ServerConfig:
    state_dir: Path
    log_level: LogLevel = LogLevel.INFO


@dataclass(frozen=True, slots=True)
class Portal:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class IscsiConfig:
    portals: tuple[Portal, ...] = (Portal("0.0.0.0", 3260),)
    base_iqn: str = DEFAULT_BASE_IQN
    queue_depth: int = DEFAULT_QUEUE_DEPTH  # the iSCSI layer's own default, written once there
    max_sessions: int = 1024
    nop_interval: float = 30.0  # seconds of silence before we ping the initiator; 0 = never
    nop_timeout: float = 30.0
    login_timeout: float = 30.0
    digests: Digests = Digests.PREFER
    isns: Portal | None = None  # the iSNS server to register with (RFC 4171), None = none


@dataclass(frozen=True, slots=True)
class DiskConfig:
    name: str
    path: Path
    readonly: bool = False
    size: int | None = None  # create a sparse raw image of this size when the file is missing


@dataclass(frozen=True, slots=True)
class TargetConfig:
    iqn: str
    luns: tuple[str, ...]
    initiators: tuple[str, ...] = ()
    alias: str = ""
    chap: ChapConfig | None = None
    mutual_chap: ChapConfig | None = None


@dataclass(frozen=True, slots=True)
class DhcpConfig:
    mode: DhcpMode = DhcpMode.OFF
    interface: str = ""
    server_ip: str = ""  # default: the interface's first IPv4 address
    pool: tuple[str, str] | None = None  # first and last address (full mode)
    router: str = ""
    dns: tuple[str, ...] = ()
    domain: str = ""
    lease_time: float = 12 * 3600
    # an UnknownClients word or an [[image]] name (PXE clients no [[client]] names are
    # adopted, each with its own disk over that image)
    unknown_clients: str = UnknownClients.IGNORE
    max_adopted: int = 64  # adopted clients at most, so stray PXE traffic cannot fill the disk
    adopt_per_minute: int = 30


@dataclass(frozen=True, slots=True)
class DnsConfig:
    enabled: bool = False
    port: int = 53
    upstream: tuple[tuple[str, int], ...] = ()  # forwarders for names outside our domain


@dataclass(frozen=True, slots=True)
class CephConfig:
    """How to reach the Ceph cluster of `rbd:` disks, as the Ceph tools default it."""
    conf: Path = Path("/etc/ceph/ceph.conf")
    id: str = "admin"  # the client name without "client."
    keyring: Path | None = None  # None: what ceph.conf names (or Ceph's default paths)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """This bootsrv among several serving one Ceph cluster: the name the others and `status` show
    for it (recorded on the RBD images it serves)."""
    name: str = ""  # empty: the host name


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """bootsrv's own HTTP for boot files (an installer ISO that iPXE sanboots; the TFTP roots' files,
    such as the EFI iPXE of UEFI HTTP boot), on the DHCP server address; it runs with the boot services."""
    port: int = 8069


@dataclass(frozen=True, slots=True)
class ImageConfig:
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class ClientConfig:
    name: str
    mac: str  # lower-case aa:bb:cc:dd:ee:ff
    image: str
    ip: str = ""
    reset_on_boot: bool = False
    chap: ChapConfig | None = None
    on_image_update: ImageUpdate = ImageUpdate.KEEP


@dataclass(frozen=True, slots=True)
class WebConfig:
    listen: Portal | None = None  # off unless set
    token: str = ""  # Authorization: Bearer <token> for the API and /metrics
    history_interval: float = 10.0  # seconds between the dashboard's history samples (an hour is kept)


@dataclass(frozen=True, slots=True)
class SnapshotsConfig:
    export_dir: Path | None = None
    initiators: tuple[str, ...] = ()  # may attach mounted snapshots, besides each disk's own initiators
    schedules: tuple[Schedule, ...] = ()
    min_free: int = 1 << 30  # bytes the disk's file system must have free for a snapshot to start


@dataclass(frozen=True, slots=True)
class WakeRoom:
    """Clients in a routed room, woken through its directed-broadcast address."""
    clients: tuple[str, ...]  # client names or shell patterns ("lab2-*")
    broadcast: Portal  # e.g. 10.2.0.255:9; the room's router must forward it (directed broadcast)


@dataclass(frozen=True, slots=True)
class WakeSchedule:
    name: str
    cron: str  # five fields, as the snapshot schedules'
    clients: tuple[str, ...] = ("*",)  # client names or shell patterns
    image: str = ""  # instead of clients: every client of this image


@dataclass(frozen=True, slots=True)
class WakeConfig:
    """Wake-on-LAN: magic packets broadcast on the boot interface (dhcp.interface unless set),
    or, for every client (`broadcast`) or some (`rooms`), to a directed-broadcast address."""
    interface: str = ""
    port: int = 9  # the discard port, where wake-on-LAN tools send by default
    broadcast: Portal | None = None
    rooms: tuple[WakeRoom, ...] = ()  # the first room whose patterns match a client is its way
    schedules: tuple[WakeSchedule, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    server: ServerConfig
    iscsi: IscsiConfig
    disks: tuple[DiskConfig, ...] = ()
    targets: tuple[TargetConfig, ...] = ()
    dhcp: DhcpConfig = DhcpConfig()
    dns: DnsConfig = DnsConfig()
    tftp_root: Path | None = None
    http: HttpConfig = HttpConfig()
    ceph: CephConfig = CephConfig()
    node: NodeConfig = NodeConfig()
    images: tuple[ImageConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    web: WebConfig = WebConfig()
    wake: WakeConfig = WakeConfig()
    _disk_index: dict[str, DiskConfig] = field(default_factory=dict, compare=False, repr=False)

    def disk(self, name: str) -> DiskConfig:
        return self._disk_index[name]

    def image(self, name: str) -> ImageConfig:
        return next(i for i in self.images if i.name == name)
