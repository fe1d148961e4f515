"""One module per dashboard, each with ``dashboard() -> dashboards.builder.Dashboard``."""
