"""The boto3 adapter of the EC2 port.

Domain code sees only :class:`InstanceInfo` values and the exceptions below, never boto3 dicts or
``ClientError``, so it can be tested against a small fake and so a change in boto3's shapes is
absorbed here.

Choices that follow from how EC2 behaves:

* The pool is observed with the ``instance-id`` *filter*, never ``InstanceIds``: with
  ``InstanceIds`` one id that no longer exists fails the whole call with
  ``InvalidInstanceID.NotFound`` (EC2 and moto alike), and ``InstanceIds`` cannot be combined
  with ``MaxResults``. A filter simply does not match a vanished id, and pages. EC2 allows at
  most 200 filter values per call (``FilterLimitExceeded``), so a larger pool is described as
  one paginated chain per 200 ids.
* Throttling (``RequestLimitExceeded``, HTTP 503) and transient 5xx errors are retried by
  botocore's "standard" retry mode with jittered exponential backoff; only when that budget is
  spent does :class:`Ec2Throttled` reach the caller, whose next pass will try again.
* ``InsufficientInstanceCapacity`` (HTTP 500) is also retried by botocore, then surfaces as
  :class:`InsufficientCapacity` so the caller can pick another free server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pullre.config import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        InstanceStateChangeTypeDef,
        InstanceTypeDef,
    )

from pullre.ec2.port import (
    MAX_FILTER_VALUES,
    MAX_PAGE_SIZE,
    MIN_PAGE_SIZE,
    Ec2,
    Ec2Error,
    Ec2Throttled,
    IncorrectState,
    InstanceInfo,
    InstanceNotFound,
    InstancePage,
    InsufficientCapacity,
)

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0

_THROTTLING_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "EC2ThrottledException"}
)
_NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


class Boto3Ec2:
    """The :class:`Ec2` port over a boto3 client, counting every call it makes.

    ``calls`` counts API calls per operation (each page is one call); ``attempts`` counts HTTP
    requests, so ``attempts - calls`` is how many retries botocore made. Both feed the "EC2
    calls per pass" metric and let tests assert pagination and retry behaviour.
    """

    def __init__(self, client: EC2Client, *, describe_page_size: int = MAX_PAGE_SIZE) -> None:
        _check_page_size(describe_page_size)
        self._client = client
        self._describe_page_size = describe_page_size
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        events = client.meta.events
        events.register("before-call.ec2", self._count_call)
        events.register("before-send.ec2", self._count_attempt)

    @property
    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    @property
    def attempts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._attempts)

    def reset_counts(self) -> None:
        """Start counting afresh, e.g. at the start of a reconcile pass."""
        with self._lock:
            self._calls.clear()
            self._attempts.clear()

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        ids = sorted(set(instance_ids))
        found: dict[str, InstanceInfo] = {}
        paginator = self._client.get_paginator("describe_instances")
        for start in range(0, len(ids), MAX_FILTER_VALUES):
            chunk = ids[start : start + MAX_FILTER_VALUES]
            pages = paginator.paginate(
                Filters=[{"Name": "instance-id", "Values": chunk}],
                PaginationConfig={"PageSize": self._describe_page_size},
            )
            with _translated("DescribeInstances"):
                for page in pages:
                    for info in _instances(page["Reservations"]):
                        found[info.instance_id] = info
        return found

    def list_instances(
        self,
        tag_filter: tuple[str, str] | None = None,
        page_token: str | None = None,
        page_size: int = 100,
    ) -> InstancePage:
        _check_page_size(page_size)
        filters: list[FilterTypeDef] = [
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
            }
        ]
        if tag_filter is not None:
            key, value = tag_filter
            filters.append({"Name": f"tag:{key}", "Values": [value]})
        token = page_token
        # With filters EC2 may hand back an empty page that still has a next token; an admin
        # page of nothing is useless, so keep reading until something or the end shows up.
        while True:
            with _translated("DescribeInstances"):
                if token:
                    response = self._client.describe_instances(
                        Filters=filters, MaxResults=page_size, NextToken=token
                    )
                else:
                    response = self._client.describe_instances(
                        Filters=filters, MaxResults=page_size
                    )
            instances = list(_instances(response["Reservations"]))
            token = response.get("NextToken") or None
            if instances or token is None:
                return InstancePage(instances, token)

    def start(self, instance_id: str) -> str:
        with _translated("StartInstances", instance_id):
            response = self._client.start_instances(InstanceIds=[instance_id])
        return _new_state(response["StartingInstances"], instance_id, "StartInstances")

    def stop(self, instance_id: str) -> str:
        with _translated("StopInstances", instance_id):
            response = self._client.stop_instances(InstanceIds=[instance_id])
        return _new_state(response["StoppingInstances"], instance_id, "StopInstances")

    def _count_call(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self._calls[event_name.rsplit(".", 1)[-1]] += 1

    def _count_attempt(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self._attempts[event_name.rsplit(".", 1)[-1]] += 1


def make_client(
    settings: AwsSettings,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    session: boto3.session.Session | None = None,
) -> EC2Client:
    """A boto3 EC2 client with explicit retry and timeout settings.

    ``max_attempts`` counts every HTTP attempt, the first included (botocore's
    ``total_max_attempts``; its ``max_attempts`` key counts retries only, an easy off-by-one).
    Credentials are deliberately not taken from pullre's settings: boto3's default chain
    (environment, shared files, instance role) keeps secrets out of ``app.ini``. A private
    session by default keeps this client independent of boto3's module-level default session,
    which is not safe to set up from several threads; tests pass a shared one to skip reloading
    the service model for every client.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = session or boto3.session.Session()
    return session.client(
        "ec2",
        region_name=settings.region or None,
        endpoint_url=settings.endpoint_url or None,
        config=config,
    )


def make_ec2(settings: AwsSettings, **client_options: Any) -> Ec2:
    """The real adapter for entry points, built from ``[aws]`` settings.

    A settings problem botocore finds while building the client (no region, say) is an
    :class:`Ec2Error` like any other, so callers catch one type.
    """
    try:
        return Boto3Ec2(make_client(settings, **client_options))
    except BotoCoreError as exc:
        raise Ec2Error(f"cannot set up the EC2 client: {exc}") from exc


def _check_page_size(page_size: int) -> None:
    if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page size must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE} (EC2's MaxResults "
            f"bounds), got {page_size}"
        )


def _instances(reservations: Sequence[Any]) -> Iterator[InstanceInfo]:
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            yield _info(instance)


def _info(instance: InstanceTypeDef) -> InstanceInfo:
    tags = {tag["Key"]: tag.get("Value", "") for tag in instance.get("Tags", []) if "Key" in tag}
    return InstanceInfo(
        instance_id=instance["InstanceId"],
        state=instance["State"]["Name"],
        private_ip=instance.get("PrivateIpAddress") or None,
        name=tags.get("Name", ""),
        instance_type=instance.get("InstanceType", ""),
        tags=tags,
    )


def _new_state(
    changes: Sequence[InstanceStateChangeTypeDef], instance_id: str, operation: str
) -> str:
    for change in changes:
        if change.get("InstanceId") == instance_id and "CurrentState" in change:
            return change["CurrentState"]["Name"]
    raise Ec2Error(
        f"{operation} did not report a state for {instance_id}",
        operation=operation,
        instance_id=instance_id,
    )


@contextmanager
def _translated(operation: str, instance_id: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into pullre's, keeping the original as ``__cause__``."""
    try:
        yield
    except ClientError as exc:
        raise _from_client_error(exc, operation, instance_id) from exc
    except BotoCoreError as exc:
        raise Ec2Error(
            f"{operation} failed: {type(exc).__name__}: {exc}",
            operation=operation,
            instance_id=instance_id,
        ) from exc


_ERROR_CLASSES: dict[str, type[Ec2Error]] = {
    **dict.fromkeys(_THROTTLING_CODES, Ec2Throttled),
    **dict.fromkeys(_NOT_FOUND_CODES, InstanceNotFound),
    "InsufficientInstanceCapacity": InsufficientCapacity,
    "IncorrectInstanceState": IncorrectState,
}


def _from_client_error(exc: ClientError, operation: str, instance_id: str | None) -> Ec2Error:
    error = exc.response.get("Error", {})
    code = error.get("Code") or "Unknown"
    message = error.get("Message") or ""
    attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    subject = f" for {instance_id}" if instance_id else ""
    retried = f" after {attempts} retries" if attempts else ""
    detail = f"{code}: {message}" if message else code
    cls = _ERROR_CLASSES.get(code, Ec2Error)
    return cls(
        f"{operation}{subject} failed{retried}: {detail}",
        code=code,
        operation=operation,
        instance_id=instance_id,
    )
