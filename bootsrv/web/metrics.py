"""Prometheus metrics, read from the appliance's view at each scrape
(prometheus-client renders them; nothing is counted twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from target.iscsi.stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from bootsrv.runtime.view import ApplianceView


class ApplianceCollector:
    def __init__(self, view: "ApplianceView") -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        stats = view.command_stats()
        if stats is not None:
            yield _gauge("bootsrv_iscsi_sessions", "iSCSI sessions logged in", len(view.sessions()))
            yield _gauge("bootsrv_iscsi_connections", "TCP connections to the portals", view.connection_count())
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
        for row in view.clients_overview():
            online.add_metric([str(row["name"])], 1.0 if row["online"] else 0.0)
        yield online
        counts = view.lease_states()
        if counts is not None:
            leases = GaugeMetricFamily("bootsrv_dhcp_leases", "DHCP leases by state", labels=["state"])
            for state, count in counts.items():
                leases.add_metric([state], count)
            yield leases
        transfers = view.tftp_transfers()
        if transfers is not None:
            yield CounterMetricFamily("bootsrv_tftp_transfers", "files served over TFTP", value=transfers)
        yield from self._backup()

    def _backup(self) -> Iterator[Metric]:
        engine = self.view.engine
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
        for row in self.view.backup.schedules():
            if row["last_run"]:
                runs.add_metric([row["name"]], row["last_run"])
                success.add_metric([row["name"]], 1.0 if row["last_result"] == "ok" else 0.0)
        yield runs
        yield success


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def render_metrics(view: "ApplianceView") -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplianceCollector(view))  # type: ignore[arg-type]
    return generate_latest(registry)
