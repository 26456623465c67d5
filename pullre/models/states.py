"""The words rows are in: statuses, roles and settings stored as strings, validated by enums."""

from __future__ import annotations

import enum


class PullRequestState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class EnvironmentStatus(enum.StrEnum):
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"
    #: Instance stopped to save money; the server and the schema stay this PR's.
    SLEEPING = "sleeping"
    RELEASING = "releasing"
    RELEASED = "released"


class SleepReason(enum.StrEnum):
    IDLE = "idle"
    OFFICE_HOURS = "office_hours"
    BY_HAND = "by_hand"


#: An environment in one of these holds (or waits for) a server; released ones are history.
ACTIVE_ENVIRONMENT_STATUSES = frozenset(EnvironmentStatus) - {EnvironmentStatus.RELEASED}


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Trust(enum.StrEnum):
    """Whose pull requests run without a maintainer's approval of their head sha."""

    #: Authors GitHub calls OWNER, MEMBER or COLLABORATOR, pushing to the repository itself.
    COLLABORATORS = "collaborators"
    #: Every PR, forks and outsiders included (for private repositories of one team).
    EVERYONE = "everyone"


class Approvers(enum.StrEnum):
    """Which pullre users may approve a waiting PR's head sha."""

    ADMINS = "admins"
    MEMBERS = "members"


class StepStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
