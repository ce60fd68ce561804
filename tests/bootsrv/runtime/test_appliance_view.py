"""The read-mostly API the operations use, on an appliance whose disks are open but whose
services are not started: every client parked, every service off, no sessions."""

from bootsrv.runtime.appliance import Appliance
from tests.bootsrv.runtime.test_reload_apply import serving


def test_a_not_started_appliance(tmp_path):
    config, first, _ = serving(tmp_path)  # (writes the image and the disks)
    first.close()
    first.backup.close()
    app = Appliance(config)
    app.open_disks()
    try:
        assert app.clients_summary() == {"total": 2, "adopted": 0, "disks_open": 0}  # parked until a login
        assert app.service_status() == {"dhcp": "off", "tftp": "off", "dns": "off"}
        assert app.sessions() == [] and app.tftp_transfers() == 0 and app.died() is None
        assert [row["name"] for row in app.clients_overview()] == ["ws01", "ws02"]
        assert app.reload() == {"applied": [], "restart_needed": []}
    finally:
        app.inventory.close()
        app.backup.close()
