"""Observability as code: SLOs, Prometheus rules, Alertmanager routing, and the log and trace pipelines.

``make generate`` (observability/generated.py) renders every generated file of the repository; this
package's own are rendered by observability/generate.py. The rest (Alertmanager routing, Fluent Bit
values, OpenSearch objects) is written by hand and checked by tests/observability against the same sources.
"""
