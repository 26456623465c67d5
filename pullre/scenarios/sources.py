"""Scenarios kept in the repository: ``.pullre/scenarios/*.md`` read at a PR's head commit.

When: on opening a PR's scenario page, when the head moved since the last read (a "read
again" button forces it). Not in the reconcile pass: a pass must never wait on this, and
the files only matter to the person about to run them. The read is two kinds of request
through the GitHub port (a directory listing, then each file), made with no transaction
open; then ``store`` writes the outcome in one short transaction.

A file that parses replaces that PR's copy of the scenario (runs on older commits are stale
anyway); a file that no longer exists takes its scenario and runs with it; a file that does
not parse leaves the previous copy (if any) attached and is reported on the page with its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.clock import Clock
from pullre.github.port import GitHub, GitHubError, GitHubNotFound
from pullre.models import PullRequest, Scenario, ScenarioFetch
from pullre.scenarios.markdown import MAX_BYTES, ParsedScenario, ScenarioFormatError, parse

DIRECTORY = ".pullre/scenarios"
MAX_FILES = 50


@dataclass
class Fetched:
    head_sha: str
    scenarios: dict[str, ParsedScenario] = field(default_factory=dict)
    #: Paths that exist but did not parse: their previous copy is kept.
    broken: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    #: False when GitHub could not be asked: nothing is removed on a failed read.
    complete: bool = True


def needs_fetch(session: Session, pull: PullRequest) -> bool:
    fetched = session.get(ScenarioFetch, pull.id)
    return bool(pull.head_sha) and (fetched is None or fetched.head_sha != pull.head_sha)


def fetch(github: GitHub, owner: str, name: str, head_sha: str) -> Fetched:
    """Read and parse every ``*.md`` of the directory at ``head_sha``; never raises."""
    result = Fetched(head_sha)
    try:
        entries = github.list_directory(owner, name, DIRECTORY, head_sha)
    except GitHubNotFound:
        return result  # no scenarios kept in this branch
    except GitHubError as exc:
        result.errors.append(f"{DIRECTORY}: {exc}")
        result.complete = False
        return result
    files = sorted(e.path for e in entries if e.type == "file" and e.path.endswith(".md"))
    if len(files) > MAX_FILES:
        result.errors.append(f"{DIRECTORY}: only the first {MAX_FILES} files are read")
    for entry in entries:
        if entry.path in files[:MAX_FILES] and entry.size > MAX_BYTES:
            result.errors.append(f"{entry.path}: larger than {MAX_BYTES // 1024} KiB")
            result.broken.add(entry.path)
    for path in files[:MAX_FILES]:
        if path in result.broken:
            continue
        try:
            result.scenarios[path] = parse(github.read_file(owner, name, path, head_sha), path)
        except ScenarioFormatError as exc:
            result.errors.append(str(exc))
            result.broken.add(path)
        except GitHubError as exc:
            result.errors.append(f"{path}: {exc}")
            result.broken.add(path)
    return result


def store(session: Session, pull: PullRequest, fetched: Fetched, clock: Clock) -> None:
    """Bring the PR's repository scenarios in line with what was read."""
    now = clock()
    kept = {
        s.source_path: s
        for s in session.scalars(select(Scenario).where(Scenario.pull_request_id == pull.id))
    }
    for path, scenario in kept.items():
        gone = path not in fetched.scenarios and path not in fetched.broken
        if gone and fetched.complete:
            session.delete(scenario)
    for path, parsed in fetched.scenarios.items():
        row = kept.get(path)
        if row is None:
            row = Scenario(pull_request_id=pull.id, source_path=path, created_at=now)
            session.add(row)
        steps = [step.as_dict() for step in parsed.steps]
        if (row.title, row.steps, row.labels) != (parsed.title, steps, list(parsed.labels)):
            row.title, row.steps, row.labels = parsed.title, steps, list(parsed.labels)
            row.updated_at = now
    record = session.get(ScenarioFetch, pull.id)
    if record is None:
        record = ScenarioFetch(pull_request_id=pull.id, head_sha=fetched.head_sha)
        session.add(record)
    record.head_sha, record.fetched_at = fetched.head_sha, now
    record.error = "\n".join(fetched.errors)[:10_000] or None
    session.flush()
