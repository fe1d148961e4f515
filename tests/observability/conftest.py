"""One live stack for the whole session (it takes ~30 s to start and feed): see tests/observability/live.py."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest

from local.stack import Stack, StackSettings
from tests.conftest import free_port
from tests.observability.live import FAULT_TOKEN, Live, drive, wait_for
from tests.observability.otlp_sink import OTLPSink
from tests.tiers import slow_fixture


@pytest.fixture(scope="session")
def otlp_sink() -> Iterator[OTLPSink]:
    sink = OTLPSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
@slow_fixture("starts the local stack: PostgreSQL, gunicorn, Prometheus and Alertmanager")
def live(tmp_path_factory: pytest.TempPathFactory, otlp_sink: OTLPSink) -> Iterator[Live]:
    settings = StackSettings(
        state_dir=tmp_path_factory.mktemp("observability-stack"),
        app_port=free_port(),
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        pg_port=free_port(),
        scrape_interval="1s",
        evaluation_interval="1s",
        workers=2,
        app_env={
            "FAULT_INJECTION_ENABLED": "true",
            "FAULT_INJECTION_TOKEN": FAULT_TOKEN,
            "LOG_LEVEL": "INFO",
            # Traces go to the test's OTLP sink, flushed every half second.
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_sink.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        },
    )
    stack = Stack(settings, out=io.StringIO())
    stack.start()
    try:
        traffic = drive(stack)
        live = Live(stack, traffic, proof_time=0.0)
        # Page-severity burn-rate alerts need the SLI recordings of the traffic just sent; once one is
        # active, every recording and alert has been evaluated over the whole traffic window.
        wait_for(live.query, 'ALERTS{alertname="TaskboardAvailabilityFastBurn",alertstate="firing"}', 60)
        time.sleep(2)  # two more scrapes and evaluations
        live.proof_time = time.time()
        yield live
    finally:
        stack.stop()
