"""The one configuration model: TOML -> validated, immutable objects.

Every service reads these objects, never the TOML. Errors name the file, the
key and what was expected, in one line, so an admin can fix them without a
traceback. Relative paths are relative to the configuration file's folder.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from snapshots.retention import Keep
from snapshots.schedule import Schedule, valid_cron

DEFAULT_BASE_IQN = "iqn.2026-11.lan.bootsrv"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_IQN_RE = re.compile(r"^iqn\.\d{4}-\d{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:-]+)?$")
_EUI_RE = re.compile(r"^eui\.[0-9a-f]{16}$")
_NAA_RE = re.compile(r"^naa\.([0-9a-f]{16}|[0-9a-f]{32})$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """One line: file, key, what was expected."""


class StartupError(Exception):
    """One line telling the admin why the appliance cannot start (or apply a change)."""


@dataclass(frozen=True, slots=True)
class ChapConfig:
    user: str
    secret: str


@dataclass(frozen=True, slots=True)
class ServerConfig:
    state_dir: Path
    log_level: str = "info"


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
    queue_depth: int = 64
    max_sessions: int = 1024
    nop_interval: float = 30.0  # seconds of silence before we ping the initiator; 0 = never
    nop_timeout: float = 30.0
    login_timeout: float = 30.0
    digests: str = "prefer"  # CRC32C header/data digests: "prefer", "initiator" or "off"


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
    mode: str = "off"  # "full" | "proxy" | "off"
    interface: str = ""
    server_ip: str = ""  # default: the interface's first IPv4 address
    pool: tuple[str, str] | None = None  # first and last address (full mode)
    router: str = ""
    dns: tuple[str, ...] = ()
    domain: str = ""
    lease_time: float = 12 * 3600
    # "ignore", "lease" (an address, no boot options: printers, laptops) or an [[image]] name
    # (PXE clients no [[client]] names are adopted, each with its own disk over that image)
    unknown_clients: str = "ignore"
    max_adopted: int = 64  # adopted clients at most, so stray PXE traffic cannot fill the disk
    adopt_per_minute: int = 30


@dataclass(frozen=True, slots=True)
class DnsConfig:
    enabled: bool = False
    port: int = 53
    upstream: tuple[tuple[str, int], ...] = ()  # forwarders for names outside our domain


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


@dataclass(frozen=True, slots=True)
class WebConfig:
    listen: Portal | None = None  # off unless set
    token: str = ""  # Authorization: Bearer <token> for the API and /metrics


@dataclass(frozen=True, slots=True)
class SnapshotsConfig:
    export_dir: Path | None = None
    initiators: tuple[str, ...] = ()  # may attach mounted snapshots, besides each disk's own initiators
    schedules: tuple[Schedule, ...] = ()
    min_free: int = 1 << 30  # bytes the disk's file system must have free for a snapshot to start


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
    images: tuple[ImageConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    web: WebConfig = WebConfig()
    _disk_index: dict[str, DiskConfig] = field(default_factory=dict, compare=False, repr=False)

    def disk(self, name: str) -> DiskConfig:
        return self._disk_index[name]


# ---- parsing helpers ----------------------------------------------------------

class _Section:
    """A TOML table being read: tracks the key path for errors and unknown keys."""

    def __init__(self, file: Path, where: str, table: Any) -> None:
        self.file, self.where = file, where
        if not isinstance(table, dict):
            self.fail("", "a table")
        self.table: dict[str, Any] = table
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, expected: str, got: Any = None) -> NoReturn:
        shown = f", got {got!r}" if got is not None else ""
        raise ConfigError(f"{self.file}: {self.key(name) if name else self.where}: expected {expected}{shown}")

    def get(self, name: str, kind: type | tuple[type, ...], expected: str, default: Any = None,
            required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.table:
            if required:
                self.fail(name, f"{expected} (the key is required)")
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are Python ints: a `true` where a number belongs is a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(name, expected, value)
        return value

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            self.fail(unknown[0], f"one of {', '.join(sorted(self.seen))} (unknown key {unknown[0]!r})")


def parse_size(text: Any) -> int | None:
    if isinstance(text, int) and not isinstance(text, bool):
        return text if text > 0 else None
    if not isinstance(text, str):
        return None
    match = _SIZE_RE.match(text)
    if not match:
        return None
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parse_duration(text: Any) -> float | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if text >= 0 else None
    if not isinstance(text, str):
        return None
    match = _DURATION_RE.match(text)
    if not match:
        return None
    return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def valid_iscsi_name(name: str) -> bool:
    name = name.lower()
    return len(name) <= 223 and bool(_IQN_RE.match(name) or _EUI_RE.match(name) or _NAA_RE.match(name))


def _parse_portal(section: _Section, text: Any, key: str = "portals") -> Portal:
    expected = 'a "host:port" string such as "0.0.0.0:3260" or "[::1]:3260"'
    if not isinstance(text, str):
        section.fail(key, expected, text)
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        section.fail(key, expected, text)
    return Portal(host, int(port))


def _parse_chap(section: _Section, name: str) -> ChapConfig | None:
    raw = section.get(name, dict, '{ user = "...", secret = "..." }')
    if raw is None:
        return None
    sub = _Section(section.file, section.key(name), raw)
    user = sub.get("user", str, "a user name", required=True)
    secret = sub.get("secret", str, "a secret of 12 to 255 characters", required=True)
    sub.done()
    if not user:
        sub.fail("user", "a non-empty user name")
    if not 12 <= len(secret) <= 255:
        sub.fail("secret", "a secret of 12 to 255 characters (RFC 7143 asks for at least 96 bits)",
                 f"{len(secret)} characters")
    return ChapConfig(user, secret)


# ---- the model ------------------------------------------------------------------

def load_config(path: str | Path) -> Config:
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_config(raw, file)


def exposed_secrets(config: Config) -> str | None:
    """A warning when the file holds secrets (CHAP, the web token) and users other
    than its owner may read it; None when all is well."""
    kinds = []
    if any(t.chap or t.mutual_chap for t in config.targets) or any(c.chap for c in config.clients):
        kinds.append("CHAP secrets")
    if config.web.token:
        kinds.append("the web token")
    try:
        mode = config.path.stat().st_mode
    except OSError:
        return None
    if not kinds or not mode & 0o077:
        return None
    return (f"{config.path} holds {' and '.join(kinds)} but is readable by others (mode {mode & 0o777:o}): "
            f"chmod 600 {config.path}")


def parse_config(raw: dict[str, Any], file: Path) -> Config:
    base = file.resolve().parent
    top = _Section(file, "", raw)

    server = _Section(file, "server", top.get("server", dict, "a [server] table", {}))
    state_dir = server.get("state_dir", str, "a folder path", "state")
    log_level = server.get("log_level", str, 'one of "debug", "info", "warning", "error"', "info")
    if log_level not in ("debug", "info", "warning", "error"):
        server.fail("log_level", 'one of "debug", "info", "warning", "error"', log_level)
    server.done()

    iscsi = _Section(file, "iscsi", top.get("iscsi", dict, "an [iscsi] table", {}))
    portal_list = iscsi.get("portals", list, 'a list of "host:port" strings', ["0.0.0.0:3260"])
    if not portal_list:
        iscsi.fail("portals", "at least one portal")
    portals = tuple(_parse_portal(iscsi, p) for p in portal_list)
    base_iqn = iscsi.get("base_iqn", str, "an iqn. name", DEFAULT_BASE_IQN).lower()
    if not valid_iscsi_name(base_iqn):
        iscsi.fail("base_iqn", 'an iSCSI name like "iqn.2026-11.lan.example"', base_iqn)
    queue_depth = iscsi.get("queue_depth", int, "an integer from 1 to 1024", 64)
    if not 1 <= queue_depth <= 1024:
        iscsi.fail("queue_depth", "an integer from 1 to 1024", queue_depth)
    max_sessions = iscsi.get("max_sessions", int, "an integer from 1 to 65535", 1024)
    if not 1 <= max_sessions <= 65535:
        iscsi.fail("max_sessions", "an integer from 1 to 65535", max_sessions)
    durations = {}
    for key, default in (("nop_interval", 30), ("nop_timeout", 30), ("login_timeout", 30)):
        value = parse_duration(iscsi.get(key, (int, float, str), 'seconds or a duration like "30s"', default))
        if value is None:
            iscsi.fail(key, 'seconds or a duration like "30s", "5m"', iscsi.table.get(key))
        durations[key] = value
    digests = iscsi.get("digests", str, '"prefer", "initiator" or "off"', "prefer")
    if digests not in ("prefer", "initiator", "off"):
        iscsi.fail("digests", '"prefer", "initiator" or "off"', digests)
    iscsi.done()

    disks: list[DiskConfig] = []
    for index, table in enumerate(top.get("disk", list, "[[disk]] tables", [])):
        section = _Section(file, f"disk[{index}]", table)
        name = section.get("name", str, "a disk name", required=True)
        if not _NAME_RE.match(name):
            section.fail("name", "letters, digits, '.', '_' or '-' (at most 64)", name)
        if any(d.name == name for d in disks):
            section.fail("name", "a name no other [[disk]] uses", name)
        disk_path = section.get("path", str, "a file path", required=True)
        readonly = section.get("readonly", bool, "true or false", False)
        size = None
        if "size" in section.table:
            size = parse_size(section.get("size", (int, str), 'a size like "1GiB"'))
            if size is None or size % 512:
                section.fail("size", 'a size in bytes, a multiple of 512, like "1GiB" or "512MiB"',
                             section.table["size"])
        section.done()
        disks.append(DiskConfig(name, (base / disk_path).resolve(), readonly, size))
    disk_index = {d.name: d for d in disks}

    targets: list[TargetConfig] = []
    for index, table in enumerate(top.get("target", list, "[[target]] tables", [])):
        section = _Section(file, f"target[{index}]", table)
        iqn = section.get("iqn", str, "an iSCSI name", required=True).lower()
        if not valid_iscsi_name(iqn):
            section.fail("iqn", 'an iSCSI name like "iqn.2026-11.lan.bootsrv:disk1"', iqn)
        if any(t.iqn == iqn for t in targets):
            section.fail("iqn", "a name no other [[target]] uses", iqn)
        luns = section.get("luns", list, "a list of disk names", required=True)
        for lun in luns:
            if lun not in disk_index:
                section.fail("luns", f"names of [[disk]] entries ({', '.join(disk_index) or 'none defined'})", lun)
        if len(set(luns)) != len(luns):
            section.fail("luns", "each disk at most once")
        initiators = section.get("initiators", list, "a list of initiator IQNs", [])
        for initiator in initiators:
            if not isinstance(initiator, str) or not valid_iscsi_name(initiator):
                section.fail("initiators", "iSCSI names like \"iqn.1991-05.com.microsoft:ws01\"", initiator)
        alias = section.get("alias", str, "a short description", "")
        chap = _parse_chap(section, "chap")
        mutual = _parse_chap(section, "mutual_chap")
        if mutual is not None and chap is None:
            section.fail("mutual_chap", "chap to be set too (the initiator authenticates first)")
        if mutual is not None and chap is not None and mutual.secret == chap.secret:
            section.fail("mutual_chap", "a secret different from chap's (RFC 7143 12.1.3)")
        section.done()
        targets.append(TargetConfig(iqn, tuple(luns), tuple(i.lower() for i in initiators), alias, chap, mutual))

    dhcp = _parse_dhcp(file, top)
    dns_section = _Section(file, "dns", top.get("dns", dict, "a [dns] table", {}))
    upstream = []
    for entry in dns_section.get("upstream", list, 'a list of forwarders like "10.0.0.53" or "10.0.0.53:5353"', []):
        host, _, port = str(entry).partition(":")
        if port and not port.isdigit():
            dns_section.fail("upstream", 'forwarders like "10.0.0.53" or "10.0.0.53:5353"', entry)
        upstream.append((_ipv4(dns_section, "upstream", host), int(port or 53)))
    dns = DnsConfig(dns_section.get("enabled", bool, "true or false", False),
                    dns_section.get("port", int, "a UDP port", 53), tuple(upstream))
    if not 0 < dns.port < 65536:
        dns_section.fail("port", "a UDP port from 1 to 65535", dns.port)
    dns_section.done()
    tftp = _Section(file, "tftp", top.get("tftp", dict, "a [tftp] table", {}))
    tftp_root = tftp.get("root", str, "a folder path", None)
    tftp.done()
    images = _parse_images(file, base, top)
    clients = _parse_clients(file, top, images, dhcp)
    taken = {t.iqn for t in targets}
    for client in clients:
        if f"{base_iqn}:{client.name}" in taken:
            raise ConfigError(f"{file}: client {client.name!r}: its target {base_iqn}:{client.name} is also a "
                              "[[target]] iqn; rename one of them")
    for client in clients:
        if client.name in disk_index:
            raise ConfigError(f"{file}: client {client.name!r}: a [[disk]] has that name too; snapshot commands "
                              "name disks and clients alike, so rename one of them")
    snapshots = _parse_snapshots(file, base, top, {d.name for d in disks} | {c.name for c in clients})
    web = _parse_web(file, top)
    top.done()
    return Config(
        path=file,
        server=ServerConfig((base / state_dir).resolve(), log_level),
        iscsi=IscsiConfig(portals, base_iqn, queue_depth, max_sessions, durations["nop_interval"],
                          durations["nop_timeout"], durations["login_timeout"], digests),
        disks=tuple(disks),
        targets=tuple(targets),
        dhcp=dhcp,
        dns=dns,
        tftp_root=(base / tftp_root).resolve() if tftp_root else None,
        images=images,
        clients=clients,
        snapshots=snapshots,
        web=web,
        _disk_index=disk_index,
    )


_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def _ipv4(section: _Section, key: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError):
        section.fail(key, "an IPv4 address like 10.77.0.1", value)


def _parse_dhcp(file: Path, top: _Section) -> DhcpConfig:
    section = _Section(file, "dhcp", top.get("dhcp", dict, "a [dhcp] table", {}))
    mode = section.get("mode", str, '"full", "proxy" or "off"', "off")
    if mode not in ("full", "proxy", "off"):
        section.fail("mode", '"full", "proxy" or "off"', mode)
    interface = section.get("interface", str, "a network interface name", "")
    if mode != "off" and not interface:
        section.fail("interface", "the interface to serve DHCP on (DHCP is on)")
    server_ip = section.get("server_ip", str, "an IPv4 address", "")
    if server_ip:
        server_ip = _ipv4(section, "server_ip", server_ip)
    pool = None
    pool_text = section.get("pool", str, 'a range like "10.77.0.100-10.77.0.199"', None)
    if pool_text is not None:
        first, sep, last = pool_text.partition("-")
        if not sep:
            section.fail("pool", 'a range like "10.77.0.100-10.77.0.199"', pool_text)
        pool = (_ipv4(section, "pool", first.strip()), _ipv4(section, "pool", last.strip()))
    elif mode == "full":
        section.fail("pool", 'an address range (full mode hands out addresses), like "10.77.0.100-10.77.0.199"')
    router = section.get("router", str, "an IPv4 address", "")
    router = _ipv4(section, "router", router) if router else ""
    dns = tuple(_ipv4(section, "dns", d) for d in section.get("dns", list, "a list of IPv4 addresses", []))
    domain = section.get("domain", str, "a DNS domain like lab", "")
    lease = parse_duration(section.get("lease_time", (int, str), 'a duration like "12h"', "12h"))
    if not lease:
        section.fail("lease_time", 'a duration like "12h"', section.table.get("lease_time"))
    unknown = section.get("unknown_clients", str, '"ignore", "lease" or an image name', "ignore")
    max_adopted = section.get("max_adopted", int, "a number of clients (0 or more)", 64)
    if max_adopted < 0:
        section.fail("max_adopted", "a number of clients (0 or more)", max_adopted)
    per_minute = section.get("adopt_per_minute", int, "a number of new clients a minute (1 or more)", 30)
    if per_minute < 1:
        section.fail("adopt_per_minute", "a number of new clients a minute (1 or more)", per_minute)
    section.done()
    return DhcpConfig(mode, interface, server_ip, pool, router, dns, domain, float(lease or 0), unknown,
                      max_adopted, per_minute)


def _parse_images(file: Path, base: Path, top: _Section) -> tuple[ImageConfig, ...]:
    images: list[ImageConfig] = []
    for index, table in enumerate(top.get("image", list, "[[image]] tables", [])):
        section = _Section(file, f"image[{index}]", table)
        name = section.get("name", str, "an image name", required=True)
        if not _NAME_RE.match(name) or any(i.name == name for i in images):
            section.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
        path = section.get("path", str, "a VHD file path", required=True)
        section.done()
        images.append(ImageConfig(name, (base / path).resolve()))
    return tuple(images)


def _parse_clients(file: Path, top: _Section, images: tuple[ImageConfig, ...],
                   dhcp: DhcpConfig) -> tuple[ClientConfig, ...]:
    names = {i.name for i in images}
    if dhcp.unknown_clients not in ("ignore", "lease") and dhcp.unknown_clients not in names:
        raise ConfigError(f"{file}: dhcp.unknown_clients: expected \"ignore\", \"lease\" or an [[image]] name, "
                          f"got {dhcp.unknown_clients!r}")
    clients: list[ClientConfig] = []
    for index, table in enumerate(top.get("client", list, "[[client]] tables", [])):
        section = _Section(file, f"client[{index}]", table)
        name = section.get("name", str, "a client (host) name", required=True)
        if not re.match(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", name) or any(c.name == name for c in clients):
            section.fail("name", "a unique host name (lower-case letters, digits, '-')", name)
        mac = section.get("mac", str, 'a MAC address like "52:54:00:12:34:56"', required=True).lower()
        if not _MAC_RE.match(mac):
            section.fail("mac", 'a MAC address like "52:54:00:12:34:56"', mac)
        mac = mac.replace("-", ":")
        if any(c.mac == mac for c in clients):
            section.fail("mac", "a MAC no other [[client]] uses", mac)
        image = section.get("image", str, "an [[image]] name", required=True)
        if image not in names:
            section.fail("image", f"one of the [[image]] names ({', '.join(sorted(names)) or 'none defined'})", image)
        ip = section.get("ip", str, "an IPv4 address", "")
        ip = _ipv4(section, "ip", ip) if ip else ""
        reset = section.get("reset_on_boot", bool, "true or false", False)
        chap = _parse_chap(section, "chap")
        section.done()
        clients.append(ClientConfig(name, mac, image, ip, reset, chap))
    return tuple(clients)


def _parse_snapshots(file: Path, base: Path, top: _Section, names: set[str]) -> SnapshotsConfig:
    section = _Section(file, "snapshots", top.get("snapshots", dict, "a [snapshots] table", {}))
    export_dir = section.get("export_dir", str, "a folder path", None)
    initiators = section.get("initiators", list, "a list of initiator IQNs", [])
    for initiator in initiators:
        if not isinstance(initiator, str) or not valid_iscsi_name(initiator):
            section.fail("initiators", "iSCSI names like \"iqn.1991-05.com.microsoft:backup01\"", initiator)
    min_free_text = section.get("min_free", (int, str), 'a size like "1GiB" (0: no floor)', "1GiB")
    min_free = 0 if min_free_text in (0, "0") else parse_size(min_free_text)
    if min_free is None:
        section.fail("min_free", 'a size like "1GiB" (0: no floor)', min_free_text)
    schedules: list[Schedule] = []
    for index, table in enumerate(section.get("schedule", list, "[[snapshots.schedule]] tables", [])):
        sub = _Section(file, f"snapshots.schedule[{index}]", table)
        name = sub.get("name", str, "a schedule name", f"schedule{index + 1}")
        if not _NAME_RE.match(name) or any(s.name == name for s in schedules):
            sub.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
        cron = sub.get("cron", str, 'a cron expression like "0 2 * * *"', required=True)
        problem = valid_cron(cron)
        if problem:
            sub.fail("cron", f'five cron fields like "0 2 * * *" (minute hour day month weekday): {problem}', cron)
        disks = sub.get("disks", list, 'a list of disk or client names, or ["*"]', ["*"])
        for disk in disks:
            if not isinstance(disk, str) or (disk not in names and not any(c in disk for c in "*?[")):
                sub.fail("disks", f"disk or client names ({', '.join(sorted(names)) or 'none defined'}) or \"*\"",
                         disk)
        export = sub.get("export", str, '"none", "full" or "incremental"', "none")
        if export not in ("none", "full", "incremental"):
            sub.fail("export", '"none", "full" or "incremental"', export)
        if export != "none" and export_dir is None:
            sub.fail("export", "snapshots.export_dir to be set (exports are written there)")
        keep_table = _Section(file, sub.key("keep"), sub.get("keep", dict, "{ last = N, daily = N, ... }", {}))
        counts = {}
        for kind in ("last", "daily", "weekly", "monthly"):
            value = keep_table.get(kind, int, "a count of 0 or more", 0)
            if value < 0:
                keep_table.fail(kind, "a count of 0 or more", value)
            counts[kind] = value
        keep_table.done()
        grace = parse_duration(sub.get("grace", (int, str), 'a duration like "6h"', "6h"))
        if grace is None:
            sub.fail("grace", 'a duration like "6h"', sub.table.get("grace"))
        full_every = sub.get("full_every", int, "a count of 1 or more", 7)
        if full_every < 1:
            sub.fail("full_every", "a count of 1 or more", full_every)
        sub.done()
        schedules.append(Schedule(name, cron, tuple(disks), export, Keep(**counts), grace, full_every))
    section.done()
    return SnapshotsConfig((base / export_dir).resolve() if export_dir else None,
                           tuple(i.lower() for i in initiators), tuple(schedules), min_free)


def _parse_web(file: Path, top: _Section) -> WebConfig:
    section = _Section(file, "web", top.get("web", dict, "a [web] table", {}))
    listen = section.get("listen", str, 'a "host:port" like "127.0.0.1:8080"', None)
    token = section.get("token", str, "a token of at least 16 characters", "")
    section.done()
    if listen is None:
        return WebConfig()
    portal = _parse_portal(section, listen, "listen")
    if len(token) < 16:
        section.fail("token", "a token of at least 16 characters (the dashboard can take snapshots and roll "
                     "disks back)", f"{len(token)} characters")
    return WebConfig(portal, token)
