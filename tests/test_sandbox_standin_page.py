"""The sandbox's stand-in page shows what reviewers get on GitHub: pullre's comment rendered from
its Markdown (safely), the head's commit statuses and the PR's deployments."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import system_clock
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import EnvironmentStatus, Scenario
from pullre.reporting.pass_report import report_changes
from pullre.sandbox.markdown_view import render
from pullre.sandbox.standin_page import pull_section
from pullre.scenarios import acceptance as scenarios
from tests.page_seeds import add_pull, add_repository, add_server


def test_the_comment_s_markdown_becomes_html_and_nothing_else_does() -> None:
    page = render(
        "<!-- pullre:status -->\n**Staging environment:** ready\n\n"
        "- **Staging:** [open staging](https://p.example/pulls/1/visit) · `https://x.example`\n"
        "- **Details:** <https://p.example/pulls/1?a=1&b=2>\n"
        "- evil [click](javascript:alert(1)) <script>alert(1)</script> \\*not bold\\*\n\n"
        "| Scenario | Result |\n|---|---|\n| Pay \\| \\<b\\>x\\</b\\> | passed |\n\n"
        "```\n<img src=x onerror=alert(1)> ``` inside\n```\n"
    )
    assert "pullre:status" not in page
    assert "<p><strong>Staging environment:</strong> ready</p>" in page
    assert '<a href="https://p.example/pulls/1/visit">open staging</a>' in page
    assert "<code>https://x.example</code>" in page
    assert '<a href="https://p.example/pulls/1?a=1&amp;b=2">' in page
    assert "javascript:" not in page.replace("[click](javascript:alert(1))", "")
    assert 'href="javascript' not in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "*not bold*" in page
    assert "<td>Pay | &lt;b&gt;x&lt;/b&gt;</td><td>passed</td>" in page
    assert "<pre><code>&lt;img src=x onerror=alert(1)&gt; ``` inside</code></pre>" in page
    assert "<img" not in page


def test_a_reported_pr_shows_its_comment_statuses_and_deployment(
    session: Session,
    session_factory: sessionmaker[Session],
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
) -> None:
    repo = add_repository(session, "acme", "page")
    pull = add_pull(session, repo, 1, status=EnvironmentStatus.READY, server=add_server(session, 3))
    sc = Scenario(title="Pay <script>x</script>", steps=[{"action": "a", "expected": "b"}])
    session.add(sc)
    session.flush()
    scenarios.attach(session, pull, sc, "ann")
    session.commit()
    github_standin.open_pull(
        "acme", "page", author="alice", head_sha=pull.head_sha, title="<b>hi</b>"
    )
    report_changes(session_factory, github, public_url="https://p.example", clock=system_clock)
    stand = github_standin.repo("acme", "page")
    page = pull_section(stand, github_standin.pull("acme", "page", 1))
    assert "<h2>#1 &lt;b&gt;hi&lt;/b&gt;</h2>" in page
    assert "<strong>pullre/deploy</strong>" in page
    assert "<strong>pullre/acceptance</strong>" in page
    assert "0 of 1 scenarios passed" in page
    assert '<ul class="deployments"><li><code>' in page
    assert "state-success" in page  # the deployment's newest status
    assert "<strong>Staging environment:</strong>" in page  # the comment, rendered
    assert "<table><thead><tr><th>Scenario</th>" in page
    assert "<script>" not in page
    assert "Pay &lt;script&gt;x&lt;/script&gt;" in page
