"""What each [[client]] gets: its own differencing disk over its image, its own
target, the one initiator name allowed there, and the root-path to boot it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootsrv.config import ClientConfig, Config
from bootsrv import naming
from bootsrv.naming import adopted_name


@dataclass(frozen=True, slots=True)
class BootClient:
    config: ClientConfig
    target_iqn: str
    initiator_iqn: str  # handed out in DHCP option 203; the only initiator the target admits
    disk_path: Path
    image_path: Path
    origin: str = "config"  # or "adopted" (dhcp.unknown_clients)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def store_key(self) -> str:
        return naming.client_store_key(self.name)

    @property
    def script_name(self) -> str:
        return f"bootsrv/{self.name}.ipxe"

    def ipxe_script(self, server_ip: str, port: int = 3260) -> bytes:
        """What an iPXE client runs when a boot file is wanted (proxyDHCP): sanboot its disk."""
        chap = self.config.chap
        credentials = f"set username {chap.user}\nset password {chap.secret}\n" if chap else ""
        return (f"#!ipxe\nset initiator-iqn {self.initiator_iqn}\n{credentials}"
                f"sanboot {self.root_path(server_ip, port)}\n").encode()

    def root_path(self, server_ip: str, port: int = 3260) -> str:
        """RFC 4173: iscsi:<server>:<protocol>:<port>:<LUN>:<target name> (empty = defaults)."""
        return f"iscsi:{server_ip}::{'' if port == 3260 else port}:0:{self.target_iqn}"


def unknown_client(config: Config, mac: str, image: str | None = None) -> BootClient | None:
    """A client for a MAC no [[client]] names, booting `dhcp.unknown_clients`' image
    (or the image it was adopted with); None when that image is no longer configured."""
    name = adopted_name(mac)
    images = {image.name: image.path for image in config.images}
    image = image or config.dhcp.unknown_clients
    if image not in images:
        return None
    return _client(config, ClientConfig(name, mac, image), images[image], origin="adopted")


def boot_clients(config: Config) -> list[BootClient]:
    images = {image.name: image.path for image in config.images}
    return [_client(config, c, images[c.image]) for c in config.clients]


def _client(config: Config, client: ClientConfig, image: Path, origin: str = "config") -> BootClient:
    base = config.iscsi.base_iqn
    return BootClient(client, naming.client_target_iqn(base, client.name),
                      naming.client_initiator_iqn(base, client.name),
                      naming.client_disk_path(config.server.state_dir, client.name, image), image, origin=origin)
