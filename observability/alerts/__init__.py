"""Hand-written alerts (as opposed to the SLO-generated ones), one module per area, one rule file each.

Written in Python so that every metric name comes from app.metric_names or the cluster metrics list
and every threshold is a named constant; `make generate` renders them to observability/rules/.
"""

from __future__ import annotations

from observability.alerts import aws, kubernetes, pipeline, service
from observability.rules import RuleFile


def rule_files() -> list[RuleFile]:
    return [service.rule_file(), kubernetes.rule_file(), aws.rule_file(), pipeline.rule_file()]
