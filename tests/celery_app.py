"""The Celery app that tests/test_celery.py runs real prefork workers of.

Configured from the environment the test gives the worker: the redis broker's
URL (``BATCH_TEST_REDIS``), the emulator's (``LLMCLIENTS_BASE_URL``), the
output file (``BATCH_TEST_OUTPUT``); with ``BATCH_TEST_PARENT_CALL`` the
parent process asks the emulator once at import, before it forks; with
``BATCH_TEST_RPM``, every node takes its tokens from one
``RedisTokenBucket`` of that rate (one at a time: ``burst=1``).
"""

from __future__ import annotations

import os

from celery import Celery

import llmclients
from llmclients.celery import RedisTokenBucket, batch_task

app = Celery("batch_test", broker=os.environ["BATCH_TEST_REDIS"], backend=os.environ["BATCH_TEST_REDIS"])
app.conf.update(
    # An unacknowledged task (its worker killed) goes back to the queue after 3 s, not an hour.
    broker_transport_options={
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        # A worker killed while it restored tasks leaves kombu's restore lock
        # behind, for 300 s by default: every restore until then is skipped.
        "unacked_mutex_expire": 2,
    },
    result_backend_transport_options={"visibility_timeout": 3},
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


def make_client() -> llmclients.OpenAICompatible:
    return llmclients.OpenAICompatible(
        base_url=os.environ["LLMCLIENTS_BASE_URL"], model="m", retry=llmclients.Retry(total=0), timeout=30
    )


rpm = os.environ.get("BATCH_TEST_RPM")
bucket = RedisTokenBucket(os.environ["BATCH_TEST_REDIS"], rpm=float(rpm), burst=1) if rpm else None
answer = batch_task(app, make_client, output=os.environ.get("BATCH_TEST_OUTPUT"), backoff=0.2, bucket=bucket)

if os.environ.get("BATCH_TEST_PARENT_CALL"):
    # The parent's client, with a pooled connection open, before the fork.
    answer.client().complete("from the parent")
