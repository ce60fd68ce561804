"""The read-mostly API the operations use, on an appliance whose disks are open but whose
services are not started: every client parked, every service off, no sessions."""

from bootsrv.runtime.view import ApplianceView
from tests.support.appliance import opened_appliance


def test_a_not_started_appliance(tmp_path):
    with opened_appliance(tmp_path) as app:
        assert app.clients_summary() == {"total": 2, "adopted": 0, "disks_open": 0}  # parked until a login
        assert app.service_status() == {"dhcp": "off", "tftp": "off", "dns": "off", "http": "off"}
        assert app.sessions() == [] and app.tftp_transfers() == 0 and app.died() is None
        assert [row["name"] for row in app.clients_overview()] == ["ws01", "ws02"]
        assert app.reload() == {"applied": [], "restart_needed": []}


def test_the_view_of_a_not_started_appliance(tmp_path):
    with opened_appliance(tmp_path) as app:
        view = ApplianceView.of(app)
        assert view.portals() == [] and view.connection_count() == 0 and view.command_stats() is None
        assert view.lease_states() is None and view.tftp_transfers() is None  # no DHCP, no TFTP
        assert [d["name"] for d in view.disks()] == ["other", "scratch", "ws01", "ws02"]
        assert all(d["sessions"] == 0 and d["snapshots"] == 0 for d in view.disks())
        assert view.images() == [{"name": "golden", "path": str(tmp_path / "golden.vhd"), "size": 1 << 20,
                                  "clients": ["ws01", "ws02"], "current": 1, "versions": 1, "edit": None,
                                  "behind": []}]
        assert view.process()["config"] == str(tmp_path / "c.toml")
