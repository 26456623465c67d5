"""GitHub's JSON for a pull request or a comment, read into pullre's value types.

Shared by the adapter (REST answers) and the webhook (event payloads), which carry the same
documented shapes; neither needs PyGithub to read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pullre.github.port import Comment, PullRequestInfo


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def parse_pull(data: dict[str, Any]) -> PullRequestInfo:
    head_repo = data["head"].get("repo")
    base_name = data["base"]["repo"]["full_name"]
    fork = head_repo["full_name"] if head_repo and head_repo["full_name"] != base_name else None
    merged = data.get("merged_at") is not None or bool(data.get("merged"))
    return PullRequestInfo(
        number=int(data["number"]),
        title=str(data["title"]),
        author_login=str((data.get("user") or {}).get("login", "")),
        head_ref=str(data["head"]["ref"]),
        head_sha=str(data["head"]["sha"]),
        head_repository=fork,
        state="merged" if merged else "open" if data["state"] == "open" else "closed",
        draft=bool(data.get("draft", False)),
        labels=tuple(str(label["name"]) for label in data.get("labels", [])),
        created_at=parse_time(data["created_at"]),
        updated_at=parse_time(data["updated_at"]),
        html_url=str(data.get("html_url", "")),
        from_fork=head_repo is None or head_repo["full_name"] != base_name,
        # Missing means unknown, and unknown is an outsider: nothing runs unapproved on it.
        author_association=str(data.get("author_association") or "NONE")[:30],
    )


def parse_comment(data: dict[str, Any]) -> Comment:
    return Comment(
        id=int(data["id"]),
        author_login=str((data.get("user") or {}).get("login", "")),
        body=str(data.get("body") or ""),
        html_url=str(data.get("html_url", "")),
        created_at=parse_time(data["created_at"]),
        updated_at=parse_time(data["updated_at"]),
    )
