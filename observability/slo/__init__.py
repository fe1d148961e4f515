"""SLO definitions: one YAML file per service, loaded and validated by :mod:`observability.slo.spec`."""
