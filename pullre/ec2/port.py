"""The EC2 port: what the reconciler, the web app and the CLI ask of EC2, in pullre's own types.

Domain code sees only :class:`InstanceInfo` values and the exceptions below, never boto3 dicts or
``ClientError``, so it can be tested against a small fake and so a change in boto3's shapes is
absorbed in :mod:`pullre.ec2.boto3_adapter`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

#: States from which an instance moves on by itself; the reconciler waits instead of acting.
TRANSITIONAL_STATES = frozenset({"pending", "stopping", "shutting-down"})

#: EC2 rejects a call whose filters hold more values than this (``FilterLimitExceeded``).
MAX_FILTER_VALUES = 200
#: EC2's bounds for ``MaxResults`` on DescribeInstances.
MIN_PAGE_SIZE = 5
MAX_PAGE_SIZE = 1000

# An access key id has this shape; it is cut out of any text that becomes an exception message
# in case a service or botocore ever echoes it back.
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")


def _redact(text: str) -> str:
    return _ACCESS_KEY_ID.sub("<access-key-id>", text)


@dataclass(frozen=True)
class InstanceInfo:
    """What pullre needs to know about one instance, as EC2 reported it at one moment."""

    instance_id: str
    #: pending | running | stopping | stopped | shutting-down | terminated
    state: str
    private_ip: str | None
    #: The ``Name`` tag, or "" when the instance has none.
    name: str
    instance_type: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def in_transition(self) -> bool:
        """True while EC2 is moving the instance on; acting now would race that move."""
        return self.state in TRANSITIONAL_STATES


class InstancePage(NamedTuple):
    instances: list[InstanceInfo]
    #: Pass back to ``list_instances`` for the next page; None on the last page.
    next_token: str | None


class Ec2Error(Exception):
    """An EC2 call failed; ``code`` is EC2's error code when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        operation: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        super().__init__(_redact(message))
        self.code = code
        self.operation = operation
        self.instance_id = instance_id


class Ec2Throttled(Ec2Error):
    """EC2 kept throttling after botocore's retries; the next pass should try again."""


class InsufficientCapacity(Ec2Error):
    """EC2 has no capacity for this instance's type in its zone; another server may start."""


class IncorrectState(Ec2Error):
    """The instance is in a state that does not allow the call (e.g. start while stopping)."""


class InstanceNotFound(Ec2Error):
    """The instance id does not exist (any more) in this account and region."""


class Ec2(Protocol):
    """The EC2 operations pullre needs; domain code takes this, entry points build the adapter."""

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        """Observe the given instances; ids EC2 no longer knows are absent from the result."""
        ...

    def list_instances(
        self,
        tag_filter: tuple[str, str] | None = None,
        page_token: str | None = None,
        page_size: int = 100,
    ) -> InstancePage:
        """One page of the account's instances (terminated ones left out), for the admin UI."""
        ...

    def start(self, instance_id: str) -> str:
        """Ask EC2 to start the instance; returns the state EC2 reports right after."""
        ...

    def stop(self, instance_id: str) -> str:
        """Ask EC2 to stop the instance; returns the state EC2 reports right after."""
        ...

    @property
    def calls(self) -> Mapping[str, int]:
        """API calls made so far per operation, for the "EC2 calls per pass" metric."""
        ...
