"""A realistic task-board user for Locust: browse, filter, read, create, finish, glance at stats.

Request names are the service's route templates (the same strings as the `route` metric label), so
Locust's table, Prometheus and the dashboards line up; the file imports nothing from app/ because it
also runs alone in the in-cluster Locust, so tests/loadtest checks the names against the app. Each
run tags its tasks with a run id and each user only touches the tasks it created, so concurrent runs
never collide.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000          # web UI on :8089
    make loadtest                                                           # the same, against make run
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, task

API = "/api/v1"
TASKS = f"{API}/tasks"
TASK = f"{API}/tasks/{{task_id}}"
STATS = f"{API}/stats"
STATUSES = ("todo", "doing", "done")

# One id per Locust process (master and workers alike: the title only needs to be unique per run).
RUN_ID = os.environ.get("LOADTEST_RUN_ID") or uuid.uuid4().hex[:8]


class TaskBoardUser(HttpUser):
    """Weights follow a read-heavy board: most visits look, a few write."""

    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.mine: list[int] = []
        self.serial = 0

    def _expect(self, response: Any, *statuses: int) -> None:
        if response.status_code not in statuses:
            response.failure(f"HTTP {response.status_code}: {response.text[:120]}")

    @task(3)
    def open_page(self) -> None:
        with self.client.get("/", name="/", catch_response=True) as response:
            self._expect(response, 200)

    @task(4)
    def list_tasks(self) -> None:
        with self.client.get(f"{TASKS}?limit=20", name=TASKS, catch_response=True) as response:
            self._expect(response, 200)

    @task(2)
    def filter_tasks(self) -> None:
        status = random.choice(STATUSES)
        with self.client.get(f"{TASKS}?status={status}&limit=20", name=TASKS, catch_response=True) as response:
            self._expect(response, 200)

    @task(4)
    def view_task(self) -> None:
        if not self.mine:
            return self.create_task()
        task_id = random.choice(self.mine)
        with self.client.get(f"{TASKS}/{task_id}", name=TASK, catch_response=True) as response:
            self._expect(response, 200)
        return None

    @task(2)
    def create_task(self) -> None:
        self.serial += 1
        body = {"title": f"load {RUN_ID} #{self.serial}"}
        with self.client.post(TASKS, json=body, name=TASKS, catch_response=True) as response:
            self._expect(response, 201)
            if response.status_code == 201:
                self.mine.append(response.json()["id"])
                del self.mine[:-50]  # remember a bounded number of our own tasks

    @task(1)
    def finish_task(self) -> None:
        if not self.mine:
            return
        task_id = self.mine.pop(0)
        with self.client.patch(
            f"{TASKS}/{task_id}", json={"status": "done"}, name=TASK, catch_response=True
        ) as response:
            self._expect(response, 200)

    @task(2)
    def read_stats(self) -> None:
        with self.client.get(STATS, name=STATS, catch_response=True) as response:
            self._expect(response, 200)
