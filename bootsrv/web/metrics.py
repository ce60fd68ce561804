"""Prometheus metrics, read from the appliance's state at each scrape
(prometheus-client renders them; nothing is counted twice)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from target.iscsi.stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from bootsrv.app import Appliance


class ApplianceCollector:
    def __init__(self, app: "Appliance") -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        server = app.server
        if server is not None:
            sessions = list(server.registry.sessions.values())
            yield _gauge("bootsrv_iscsi_sessions", "iSCSI sessions logged in", len(sessions))
            yield _gauge("bootsrv_iscsi_connections", "TCP connections to the portals", len(server.connections))
            stats = server.stats
            commands = CounterMetricFamily("bootsrv_scsi_commands", "SCSI commands completed", labels=["kind"])
            for kind, count in stats.commands.items():
                commands.add_metric([kind], count)
            yield commands
            yield CounterMetricFamily("bootsrv_scsi_commands_failed", "commands answered with a status other "
                                      "than GOOD", value=stats.failed)
            yield CounterMetricFamily("bootsrv_scsi_read_bytes", "data sent to initiators", value=stats.bytes_read)
            yield CounterMetricFamily("bootsrv_scsi_written_bytes", "data received from initiators",
                                      value=stats.bytes_written)
            buckets, running = [], 0
            for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], stats.latency_counts):
                running += count
                buckets.append((bound, running))
            yield HistogramMetricFamily("bootsrv_scsi_command_duration_seconds", "time from a command's arrival "
                                        "to its completion", buckets=buckets, sum_value=stats.latency_sum)
        online = GaugeMetricFamily("bootsrv_client_online", "1 if the client has a session on its disk",
                                   labels=["client"])
        for row in app.clients_overview():
            online.add_metric([str(row["name"])], 1.0 if row["online"] else 0.0)
        yield online
        if app.leases is not None:
            leases = GaugeMetricFamily("bootsrv_dhcp_leases", "DHCP leases by state", labels=["state"])
            now, counts = time.time(), {"bound": 0, "offered": 0, "declined": 0, "expired": 0}
            for lease in app.leases.all():
                state = "expired" if lease.expires < now else lease.state
                counts[state] = counts.get(state, 0) + 1
            for state, count in counts.items():
                leases.add_metric([state], count)
            yield leases
        if app.tftp is not None:
            yield CounterMetricFamily("bootsrv_tftp_transfers", "files served over TFTP", value=app.tftp.transfers)
        yield from self._backup()

    def _backup(self) -> Iterator[Metric]:
        engine = self.app.backup.engine
        count = GaugeMetricFamily("bootsrv_snapshots", "snapshots kept", labels=["disk"])
        held = GaugeMetricFamily("bootsrv_snapshot_bytes", "disk data held by snapshots", labels=["disk"])
        for disk in sorted(engine.volumes):
            kept, data = engine.usage(disk)
            count.add_metric([disk], kept)
            held.add_metric([disk], data)
        yield count
        yield held
        ops = CounterMetricFamily("bootsrv_snapshot_operations", "snapshot operations by result",
                                  labels=["operation", "result"])
        for (operation, result), value in sorted(engine.outcomes.items()):
            ops.add_metric([operation, result], value)
        yield ops
        last_export = GaugeMetricFamily("bootsrv_export_last_timestamp_seconds", "when the newest export of a "
                                        "disk was made", labels=["disk"])
        newest: dict[str, float] = {}
        for export in engine.catalog.exports():
            newest[export.disk] = max(newest.get(export.disk, 0.0), export.created)
        for disk, stamp in sorted(newest.items()):
            last_export.add_metric([disk], stamp)
        yield last_export
        runs = GaugeMetricFamily("bootsrv_schedule_last_run_timestamp_seconds", "when a schedule last started",
                                 labels=["schedule"])
        success = GaugeMetricFamily("bootsrv_schedule_last_run_success", "1 if the schedule's last run was ok",
                                    labels=["schedule"])
        for row in self.app.backup.schedules():
            if row["last_run"]:
                runs.add_metric([row["name"]], row["last_run"])
                success.add_metric([row["name"]], 1.0 if row["last_result"] == "ok" else 0.0)
        yield runs
        yield success


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def render_metrics(app: "Appliance") -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplianceCollector(app))  # type: ignore[arg-type]
    return generate_latest(registry)
