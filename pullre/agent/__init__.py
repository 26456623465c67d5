"""The staging-side agent: one pass deploys the PR this server is assigned to.

Standard library only, and nothing imported from the rest of ``pullre`` but the stdlib-only
smoke modules: a staging box runs untrusted PR code, so it gets this package and ``pullre/smoke``
alone, as one zipapp (``bundle``: ``pullre-agent.pyz``, whose ``__main__`` is ``main``) — no
controller settings, no third-party code, no credentials beyond its agent token and the PR's own
database user. ``AGENT_VERSION`` names a release; agents run from a bundle also compare its hash
with the one their controller serves and update themselves (``self_update``).
"""

AGENT_VERSION = "0.1.0"
