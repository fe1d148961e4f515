"""Alerts on the managed AWS services the platform uses: RDS PostgreSQL and Amazon OpenSearch.

The metrics are CloudWatch's, exported to Prometheus by YACE (yet-another-cloudwatch-exporter); the
names, and the statistics the YACE job must request, are in observability/cluster-metrics.yaml. YACE is
scraped every few minutes (CloudWatch's own resolution is a minute at best), so every expression reads
a 10-minute *_over_time window: a gap between two scrapes must not reset an alert's `for`.
"""

from __future__ import annotations

from observability import cluster, promql
from observability.cluster_metrics import metric
from observability.rules import Alert, Group, RuleFile

RDS_CPU_PERCENT = 80
RDS_CPU_FOR = "15m"
RDS_FREE_STORAGE_BYTES = 5 * 1024**3  # CloudWatch FreeStorageSpace for RDS is in bytes
RDS_FREE_STORAGE_FOR = "15m"
RDS_CONNECTIONS_RATIO = 0.8
RDS_CONNECTIONS_FOR = "10m"
OPENSEARCH_RED_FOR = "5m"
OPENSEARCH_YELLOW_FOR = "30m"
OPENSEARCH_FREE_STORAGE_MIB = 10 * 1024  # CloudWatch FreeStorageSpace for OpenSearch is in megabytes
OPENSEARCH_FREE_STORAGE_FOR = "15m"
GAP = "10m"  # the *_over_time window that bridges YACE's scrape interval

YACE = "yace"
_RDS = "{{ $labels.dimension_DBInstanceIdentifier }}"
_DOMAIN = "{{ $labels.dimension_DomainName }}"


def rds_max_connections() -> int:
    """max_connections of the RDS parameter group (CloudWatch does not publish it): infra/cluster.yaml."""
    return cluster.load().database_max_connections


def rds_alerts() -> list[Alert]:
    max_connections = rds_max_connections()
    cpu = metric(YACE, "aws_rds_cpuutilization_average")
    storage = metric(YACE, "aws_rds_free_storage_space_minimum")
    connections = metric(YACE, "aws_rds_database_connections_maximum")
    return [
        Alert(
            name="RDSCPUUtilizationHigh",
            expr=f"avg_over_time({cpu}[{GAP}]) > {RDS_CPU_PERCENT}",
            for_=RDS_CPU_FOR,
            severity="ticket",
            summary=f'RDS instance {_RDS} CPU is at {{{{ $value | printf "%.0f" }}}} %',
            description=(
                f"CloudWatch CPUUtilization of RDS instance {_RDS} has stayed above {RDS_CPU_PERCENT} % for "
                f"{RDS_CPU_FOR}; query latency rises as the instance runs out of CPU."
            ),
        ),
        Alert(
            name="RDSFreeStorageLow",
            expr=f"min_over_time({storage}[{GAP}]) < {RDS_FREE_STORAGE_BYTES}",
            for_=RDS_FREE_STORAGE_FOR,
            severity="ticket",
            summary=f"RDS instance {_RDS} has {{{{ $value | humanize1024 }}}}B of storage left",
            description=(
                f"CloudWatch FreeStorageSpace of RDS instance {_RDS} has been below "
                f"{RDS_FREE_STORAGE_BYTES // 1024**3} GiB for {RDS_FREE_STORAGE_FOR}. When it reaches zero the "
                "instance goes into storage-full and refuses writes."
            ),
        ),
        Alert(
            name="RDSConnectionsNearMax",
            expr=(f"max_over_time({connections}[{GAP}]) / {max_connections} > {promql.number(RDS_CONNECTIONS_RATIO)}"),
            for_=RDS_CONNECTIONS_FOR,
            severity="ticket",
            summary=f"RDS instance {_RDS} uses {{{{ $value | humanizePercentage }}}} of max_connections",
            description=(
                f"DatabaseConnections of RDS instance {_RDS} peaked above {RDS_CONNECTIONS_RATIO:.0%} of "
                f"max_connections ({max_connections}) for {RDS_CONNECTIONS_FOR}. New connections will be "
                "refused (FATAL: too many connections) and pods fail readiness."
            ),
        ),
    ]


def opensearch_alerts() -> list[Alert]:
    red = metric(YACE, "aws_es_cluster_status_red_maximum")
    yellow = metric(YACE, "aws_es_cluster_status_yellow_maximum")
    storage = metric(YACE, "aws_es_free_storage_space_minimum")
    return [
        Alert(
            name="OpenSearchClusterRed",
            expr=f"max_over_time({red}[{GAP}]) >= 1",
            for_=OPENSEARCH_RED_FOR,
            severity="ticket",
            summary=f"OpenSearch domain {_DOMAIN} is red",
            description=(
                f"At least one primary shard of OpenSearch domain {_DOMAIN} has been unassigned for "
                f"{OPENSEARCH_RED_FOR}: writes to the affected indices fail and Fluent Bit buffers (then "
                "drops) logs; searches return partial results."
            ),
        ),
        Alert(
            name="OpenSearchClusterYellow",
            expr=f"min_over_time({yellow}[{GAP}]) >= 1",
            for_=OPENSEARCH_YELLOW_FOR,
            severity="ticket",
            summary=f"OpenSearch domain {_DOMAIN} is yellow",
            description=(
                f"Replica shards of OpenSearch domain {_DOMAIN} have been unassigned for "
                f"{OPENSEARCH_YELLOW_FOR}: the data has no redundancy; one more node loss turns the domain red."
            ),
        ),
        Alert(
            name="OpenSearchFreeStorageLow",
            expr=f"min_over_time({storage}[{GAP}]) < {OPENSEARCH_FREE_STORAGE_MIB}",
            for_=OPENSEARCH_FREE_STORAGE_FOR,
            severity="ticket",
            summary=f'An OpenSearch node of {_DOMAIN} has {{{{ $value | printf "%.0f" }}}} MiB free',
            description=(
                f"The emptiest data node of OpenSearch domain {_DOMAIN} has had less than "
                f"{OPENSEARCH_FREE_STORAGE_MIB // 1024} GiB free for {OPENSEARCH_FREE_STORAGE_FOR}. Past the "
                "flood-stage watermark OpenSearch makes indices read-only and log ingestion stops."
            ),
        ),
    ]


def rule_file() -> RuleFile:
    return RuleFile(
        filename="aws-managed-services.yml",
        about="Alerts on RDS PostgreSQL and Amazon OpenSearch, from CloudWatch metrics exported by YACE.",
        groups=[Group("rds", rds_alerts()), Group("opensearch", opensearch_alerts())],
    )
