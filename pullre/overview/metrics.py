"""The Prometheus text exposition (format 0.0.4) of ``/metrics``, built from the controller DB.

Written by hand rather than with ``prometheus_client``: the reconciler runs as separate
processes (cron, ``--loop``), so there is no in-process state to instrument and every number
is read from the database on each scrape. What the library would add is a registry and
collector classes around a few aggregate queries; what this module needs of the format is HELP,
TYPE, samples and label escaping, a few dozen lines, without a new runtime dependency.

Counters that sum ``PassRun`` rows stay monotonic across pruning because ``pass_history``
folds pruned rows into the oldest kept one and ``passes_total`` reads the highest row id.

Deploy outcomes: a deploy counts as ``ok`` when its ``health`` step reports ok (the report that
makes the environment ready) and as ``failed`` when any of its steps reports failed (the agent
stops at the first failure). ``smoke`` is not yet run by the agent; when it is, a smoke failure
after a healthy start will count once under each result.

Month-to-date cost counts running time up to the scrape, the open run included (unlike the PR
comment, which must not change every pass); it starts again at 0 on the first of each month (UTC),
so it is a gauge. Every repository is exposed, at 0 too; running time no PR asked for is
``repository="(no PR)"``. Hours run on servers with no known price count in the hours, not in
the cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from pullre.cost.pricing import Cost, monthly_by_repository
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    DeployStep,
    Environment,
    EnvironmentStatus,
    PassRun,
    PullRequest,
    Repository,
    Server,
    StepStatus,
    utcnow,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    #: (labels, value) pairs; an unlabelled metric has one pair with empty labels.
    samples: Sequence[tuple[Mapping[str, str], float]] = ()


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed are the three characters the format escapes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: Iterable[Metric]) -> str:
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            label_text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            selector = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{metric.name}{selector} {_number(value)}")
    return "\n".join(lines) + "\n"


def _gauge(name: str, help: str, value: float) -> Metric:
    return Metric(name, "gauge", help, [({}, value)])


def _counter(name: str, help: str, value: float) -> Metric:
    return Metric(name, "counter", help, [({}, value)])


def collect(session: Session, *, currency: str = "", now: datetime | None = None) -> list[Metric]:
    """Every metric, from a few aggregate queries whatever the size of the pool or history.

    ``currency`` is ``[cost] currency``, the unit of the cost metric; ``now`` ends the month.
    """
    metrics = _server_metrics(session)
    metrics += _environment_metrics(session)
    metrics += _pass_metrics(session)
    metrics.append(_deploy_metric(session))
    metrics += _cost_metrics(session, currency, now or utcnow())
    return metrics


def exposition(session: Session, *, currency: str = "", now: datetime | None = None) -> str:
    return render(collect(session, currency=currency, now=now))


def _server_metrics(session: Session) -> list[Metric]:
    held = (
        select(Environment.id)
        .where(
            Environment.server_id == Server.id,
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
        .exists()
    )
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((held, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Server.observed_state == "pending", 1), else_=0)), 0),
            func.coalesce(func.sum(case((Server.observed_state == "stopping", 1), else_=0)), 0),
        ).where(Server.in_pool.is_(True))
    ).one()
    size, busy, starting, stopping = (int(v) for v in row)
    return [
        _gauge("pullre_pool_servers", "Servers in the pool.", size),
        _gauge(
            "pullre_servers_busy",
            "Pool servers held by an active (not released) environment.",
            busy,
        ),
        _gauge("pullre_servers_free", "Pool servers no active environment holds.", size - busy),
        _gauge(
            "pullre_servers_starting",
            "Pool servers EC2 last reported as pending (starting).",
            starting,
        ),
        _gauge("pullre_servers_stopping", "Pool servers EC2 last reported as stopping.", stopping),
    ]


def _environment_metrics(session: Session) -> list[Metric]:
    rows = session.execute(
        select(Environment.status, func.count())
        .where(Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES))
        .group_by(Environment.status)
    )
    counts: dict[EnvironmentStatus, int] = dict(rows.all())
    # Every status is always exposed, at 0 too, so a series never vanishes from a graph.
    by_status = [
        ({"status": status.value}, float(counts.get(status, 0)))
        for status in EnvironmentStatus
        if status in ACTIVE_ENVIRONMENT_STATUSES
    ]
    pinned = session.scalar(
        select(func.count())
        .select_from(Environment)
        .join(PullRequest, PullRequest.id == Environment.pull_request_id)
        .where(
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
            PullRequest.pinned_at.is_not(None),
        )
    )
    return [
        _gauge(
            "pullre_queue_length",
            "PRs waiting for a free server.",
            counts.get(EnvironmentStatus.QUEUED, 0),
        ),
        _gauge(
            "pullre_pinned_environments",
            "Active environments of pinned PRs (exempt from sleep, expiry and reclaim).",
            pinned or 0,
        ),
        Metric(
            "pullre_environments",
            "gauge",
            "Active environments by status (released ones are history and not counted).",
            by_status,
        ),
    ]


def _pass_metrics(session: Session) -> list[Metric]:
    newest_id, requests, not_modified, ec2_calls = session.execute(
        select(
            func.max(PassRun.id),
            func.coalesce(func.sum(PassRun.github_requests), 0),
            func.coalesce(func.sum(PassRun.github_not_modified), 0),
            func.coalesce(func.sum(PassRun.ec2_calls), 0),
        )
    ).one()
    last = session.execute(
        select(PassRun.started_at, PassRun.duration_ms).order_by(PassRun.id.desc()).limit(1)
    ).first()
    remaining = session.scalar(
        select(PassRun.rate_limit_remaining)
        .where(PassRun.rate_limit_remaining.is_not(None))
        .order_by(PassRun.id.desc())
        .limit(1)
    )
    metrics = [
        _counter("pullre_passes_total", "Reconcile passes that held the lease.", newest_id or 0),
        _counter(
            "pullre_github_requests_total",
            "HTTP requests reconcile passes sent to GitHub, retries included.",
            requests,
        ),
        _counter(
            "pullre_github_not_modified_total",
            "GitHub answers that were 304 Not Modified (free of rate limit).",
            not_modified,
        ),
        _counter("pullre_ec2_calls_total", "EC2 API calls reconcile passes made.", ec2_calls),
    ]
    # No sample at all rather than a made-up 0: "never measured" must not look like "exhausted".
    if remaining is not None:
        metrics.append(
            _gauge(
                "pullre_github_rate_limit_remaining",
                "GitHub requests left in the current rate-limit window, as last seen by a pass.",
                remaining,
            )
        )
    if last is not None:
        started_at, duration_ms = last
        metrics += [
            _gauge(
                "pullre_last_pass_duration_seconds",
                "How long the last reconcile pass took.",
                duration_ms / 1000,
            ),
            _gauge(
                "pullre_last_pass_timestamp_seconds",
                "When the last reconcile pass ended, in Unix time.",
                started_at.timestamp() + duration_ms / 1000,
            ),
        ]
    return metrics


def _deploy_metric(session: Session) -> Metric:
    ok = (DeployStep.step == "health") & (DeployStep.status == StepStatus.OK)
    ok_count, failed_count = session.execute(
        select(
            func.coalesce(func.sum(case((ok, 1), else_=0)), 0),
            func.coalesce(func.sum(case((DeployStep.status == StepStatus.FAILED, 1), else_=0)), 0),
        ).where((DeployStep.step == "health") | (DeployStep.status == StepStatus.FAILED))
    ).one()
    return Metric(
        "pullre_deploys_total",
        "counter",
        "Deploys agents finished: ok when the health step passed, failed when any step failed.",
        [({"result": "ok"}, float(ok_count)), ({"result": "failed"}, float(failed_count))],
    )


def _cost_metrics(session: Session, currency: str, now: datetime) -> list[Metric]:
    costs: dict[str, Cost] = {
        f"{owner}/{name}": Cost()
        for owner, name in session.execute(select(Repository.owner, Repository.name))
    }
    for row in monthly_by_repository(session, months=1, now=now):
        costs[row.repository] = row.cost
    ordered = sorted(costs.items())
    return [
        Metric(
            "pullre_cost_month_to_date",
            "gauge",
            "What servers cost this calendar month (UTC) so far, by repository; "
            "priced running time only.",
            [
                ({"repository": repository, "currency": currency}, float(cost.amount))
                for repository, cost in ordered
            ],
        ),
        Metric(
            "pullre_running_hours_month_to_date",
            "gauge",
            "Hours servers ran this calendar month (UTC) so far, by repository, priced or not.",
            [({"repository": repository}, float(cost.hours)) for repository, cost in ordered],
        ),
    ]
