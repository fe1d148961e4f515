"""Observability as code: SLOs, Prometheus rules, Alertmanager routing, and the log and trace pipelines.

``python -m observability.generate`` (``make observability``) renders every generated file from the
sources in this package; the rest (Alertmanager routing, Fluent Bit values, OpenSearch objects) is
written by hand and checked by tests/observability against the same sources.
"""
