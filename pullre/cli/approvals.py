"""CLI commands for whose PRs run unapproved and for approving a waiting PR's head sha.

``python -m pullre repo set`` and ``pull approve``; the rules are :mod:`pullre.trust.approval`'s,
so the UI, the API and the CLI refuse the same things with the same words. Failures are
:class:`~pullre.trust.approval.ApprovalRefused`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.cli.arguments import AddCommand, full_name, registered
from pullre.clock import system_clock
from pullre.environments import clone_urls
from pullre.models import Approvers, PullRequest, Repository, Trust, User
from pullre.trust import approval

_SHA = re.compile(r"[0-9a-fA-F]{40}")


def _sha(value: str) -> str:
    if not _SHA.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a full 40-character commit sha")
    return value.lower()


def _clone_url(value: str) -> str:
    if not value.strip():
        return ""
    try:
        return clone_urls.check(value)
    except clone_urls.BadCloneUrl as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _repository(session: Session, full_name: tuple[str, str]) -> Repository:
    owner, name = full_name
    found = registered(session, full_name)
    if found is None:
        raise approval.ApprovalRefused(f"{owner}/{name} is not registered")
    return found


def repo_set(session: Session, args: argparse.Namespace) -> None:
    repository = _repository(session, args.repository)
    if args.trust is not None:
        repository.trust = Trust(args.trust)
    if args.approvers is not None:
        repository.approvers = Approvers(args.approvers)
    if args.clone_url is not None:  # "" goes back to GitHub's address
        repository.clone_url = args.clone_url or None
    events.record(
        session,
        "repository.saved",
        f"{repository.full_name} saved from the CLI",
        repository_id=repository.id,
        trust=repository.trust.value,
        approvers=repository.approvers.value,
        clone_url=repository.clone_url,
    )
    print(
        f"saved {repository.full_name}: runs without approval for {repository.trust.value}; "
        f"{approval.who_can_approve(repository)} may approve; boxes fetch from "
        f"{repository.clone_url or 'GitHub'}"
    )


def pull_approve(session: Session, args: argparse.Namespace) -> None:
    repository = _repository(session, args.repository)
    pull = session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == args.number
        )
    )
    if pull is None:
        raise approval.ApprovalRefused(f"pullre knows no #{args.number} of {repository.full_name}")
    user = session.scalar(select(User).where(User.username == args.by))
    if user is None:
        raise approval.ApprovalRefused(f"there is no pullre user {args.by!r}")
    approval.approve(session, pull, args.sha, user=user, clock=system_clock)
    print(f"approved {args.sha[:12]} of {repository.full_name}#{pull.number} as {user.username}")


def add_commands(
    command: AddCommand,
    repo_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    set_ = command(
        "set", repo_set, "whose PRs run without approval, and who may approve", repo_commands
    )
    set_.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    set_.add_argument(
        "--trust",
        choices=[t.value for t in Trust],
        help="collaborators (default): PRs from forks or outsiders wait; everyone: none wait",
    )
    set_.add_argument(
        "--approvers",
        choices=[a.value for a in Approvers],
        help="admins (default), or members too",
    )
    set_.add_argument(
        "--clone-url",
        type=_clone_url,
        metavar="URL",
        help="where boxes fetch the code from instead of GitHub (an SSH address used with a "
        "deploy key on the boxes, GitHub Enterprise, a mirror); '' goes back to GitHub's",
    )

    pull = commands.add_parser("pull", help="pull requests pullre follows")
    pull_commands = pull.add_subparsers(dest="pull_command", required=True, metavar="COMMAND")
    approve = command(
        "approve",
        pull_approve,
        "let a waiting PR's head commit run (a push needs a new approval)",
        pull_commands,
    )
    approve.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    approve.add_argument("number", type=int, metavar="NUMBER")
    approve.add_argument("sha", type=_sha, metavar="SHA", help="the PR's head sha, in full")
    approve.add_argument(
        "--by",
        required=True,
        metavar="USERNAME",
        help="the pullre user who approves (recorded in the audit log; must be allowed to)",
    )
