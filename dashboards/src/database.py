"""Database: the service's connection pool and query latency, and the RDS instance behind it."""

from __future__ import annotations

from app import metric_names as names
from dashboards.builder import Dashboard, Panel, Query, Row, sel
from dashboards.src.traffic import RATE
from observability.alerts import aws, service
from observability.cluster_metrics import metric

UID = "taskboard-database"


def _query_quantile(q: float) -> str:
    buckets = sel(names.DB_QUERY_DURATION.bucket)
    return f"histogram_quantile({q}, sum by ({names.OPERATION}, le) (rate({buckets}[{RATE}])))"


def dashboard() -> Dashboard:
    op = names.OPERATION
    rds = "dimension_DBInstanceIdentifier"
    cpu = metric(aws.YACE, "aws_rds_cpuutilization_average")
    storage = metric(aws.YACE, "aws_rds_free_storage_space_minimum")
    connections = metric(aws.YACE, "aws_rds_database_connections_maximum")
    return Dashboard(
        uid=UID,
        title="Task board / Database",
        description="Connection pool and named queries as the service measures them; RDS as CloudWatch does.",
        rows=[
            Row(
                "Connection pool",
                [
                    Panel(
                        "Pool connections in use and maximum",
                        [
                            Query(
                                f"sum by (instance) ({sel(names.DB_POOL_CONNECTIONS_IN_USE.name)})",
                                "{{instance}} in use",
                            ),
                            Query(f"sum by (instance) ({sel(names.DB_POOL_CONNECTIONS_MAX.name)})", "{{instance}} max"),
                        ],
                        width=12,
                    ),
                    Panel(
                        "Database errors by operation",
                        [Query(f"sum by ({op}) (rate({sel(names.DB_ERRORS.total)}[{RATE}]))", f"{{{{{op}}}}}")],
                        unit="ops",
                        width=12,
                        description="PostgreSQL unreachable or timed out: the requests answered 503.",
                    ),
                ],
            ),
            Row(
                "Queries",
                [
                    Panel(
                        "Query p99 by operation",
                        [Query(_query_quantile(0.99), f"{{{{{op}}}}}")],
                        unit="s",
                        thresholds=(("green", None), ("red", service.QUERY_P99_SECONDS)),
                    ),
                    Panel("Query p50 by operation", [Query(_query_quantile(0.5), f"{{{{{op}}}}}")], unit="s"),
                    Panel(
                        "Queries per second by operation",
                        [Query(f"sum by ({op}) (rate({sel(names.DB_QUERY_DURATION.count)}[{RATE}]))", f"{{{{{op}}}}}")],
                        unit="ops",
                    ),
                ],
            ),
            Row(
                "RDS (CloudWatch via YACE)",
                [
                    Panel(
                        "RDS CPU",
                        [Query(f"{cpu}", f"{{{{{rds}}}}}")],
                        unit="percent",
                        cluster_only=aws.YACE,
                        thresholds=(("green", None), ("red", float(aws.RDS_CPU_PERCENT))),
                    ),
                    Panel(
                        "RDS free storage",
                        [Query(f"{storage}", f"{{{{{rds}}}}}")],
                        unit="bytes",
                        cluster_only=aws.YACE,
                        thresholds=(("red", None), ("green", float(aws.RDS_FREE_STORAGE_BYTES))),
                    ),
                    Panel(
                        "RDS connections against max_connections",
                        [Query(f"{connections} / {aws.rds_max_connections()}", f"{{{{{rds}}}}}")],
                        unit="percentunit",
                        cluster_only=aws.YACE,
                        thresholds=(("green", None), ("red", aws.RDS_CONNECTIONS_RATIO)),
                    ),
                ],
            ),
        ],
    )
