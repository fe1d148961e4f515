"""Grafana dashboards as code: grafanalib sources in dashboards/src/, classic JSON in dashboards/generated/.

``make generate`` writes the JSON (dashboards/generate.py); dashboards/builder.py is the one
place that adapts grafanalib (datasource on every target, exemplars, data links, cluster-only panels).
"""
