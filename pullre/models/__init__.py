"""The controller's data: what GitHub told us, what the pool holds, and what we decided.

Status columns are plain strings validated by Python enums (``native_enum=False`` and no CHECK
constraint), so a later issue can add a status without a table rebuild on SQLite. Times are
stored as naive UTC and handed back aware, the same on SQLite and MySQL.

One module per concern (``base``, ``states``, ``github``, ``pool``, ``accounts``,
``operations``, ``scenarios``, ``secrets``); every name is importable from ``pullre.models``
itself, and importing the package maps every table (Alembic and the tests rely on
``Base.metadata``).
"""

from pullre.models.accounts import ApiToken, LoginThrottle, User
from pullre.models.base import NAMING_CONVENTION, Base, UTCDateTime, enum_type, utcnow
from pullre.models.github import GithubReport, GithubUser, PullRequest, Repository, WebhookDelivery
from pullre.models.operations import Event, Lease, PassRun
from pullre.models.pool import DeployStep, Environment, RunningSpan, Schedule, Server
from pullre.models.scenarios import Scenario, ScenarioAttachment, ScenarioFetch, ScenarioRun
from pullre.models.secrets import RepositorySecret
from pullre.models.states import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Approvers,
    EnvironmentStatus,
    PullRequestState,
    Role,
    SleepReason,
    StepStatus,
    Trust,
)

__all__ = [
    "ACTIVE_ENVIRONMENT_STATUSES",
    "NAMING_CONVENTION",
    "ApiToken",
    "Approvers",
    "Base",
    "DeployStep",
    "Environment",
    "EnvironmentStatus",
    "Event",
    "GithubReport",
    "GithubUser",
    "Lease",
    "LoginThrottle",
    "PassRun",
    "PullRequest",
    "PullRequestState",
    "Repository",
    "RepositorySecret",
    "Role",
    "RunningSpan",
    "Scenario",
    "ScenarioAttachment",
    "ScenarioFetch",
    "ScenarioRun",
    "Schedule",
    "Server",
    "SleepReason",
    "StepStatus",
    "Trust",
    "UTCDateTime",
    "User",
    "WebhookDelivery",
    "enum_type",
    "utcnow",
]
