"""Whose code the pool runs: a repository's trust setting and maintainers' approvals.

Modules: ``approval`` (which PRs wait for a maintainer, who may approve, approving a head sha).

May import: the shared top level only. Never ``web``, ``cli`` or ``sandbox``.
"""
