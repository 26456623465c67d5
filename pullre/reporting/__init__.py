"""What goes back to the pull request on GitHub: deployments, one status comment, commit statuses.

Modules: ``facts`` (what a PR's reports are made of, read in one short transaction),
``verdicts`` (what each report says: deployment state, commit statuses, the comment's view),
``comment`` (the Markdown of pullre's one PR comment), ``sender`` (sends one PR's reports, only
what changed), ``pass_report`` (``report_changes``: every PR in turn within the pass's time
budget, renewing its lease).

May import: the GitHub port, ``scenarios``, ``cost``, ``policies``, ``smoke`` (result text),
``trust``, ``environments.status``, ``environments.error_text`` and
``environments.visit_status`` (the words people read for an environment) and the shared top
level. Never ``web``, ``cli`` or ``sandbox``.
"""
