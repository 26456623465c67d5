"""The staging-side agent: one pass deploys the PR this server is assigned to.

Standard library only, and nothing imported from the rest of ``pullre`` but the stdlib-only
smoke modules: a staging box runs untrusted PR code, so it gets this package, ``pullre/smoke*.py``
and ``client.py`` alone — no controller settings, no third-party code, no credentials beyond its
agent token and the PR's own database user.
"""

AGENT_VERSION = "0.1.0"
