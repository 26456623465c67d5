"""Smoke checks, shared by the controller and the agent: the agent bundle ships this package.

Modules: ``runner`` (run checks in parallel within a budget), ``results`` (the JSON shape the
agent sends and the controller validates, and how people read it), ``config`` (``[[smoke]]``
entries of ``.pullre.toml`` into checks), ``checks`` (the five kinds of check), ``formats`` (an
app's own smoke endpoint: django-smoketest and hospital JSON).

May import: the standard library and ``pullre.agent`` only (checked by import-linter): it runs on
staging boxes beside untrusted code, with no third-party packages.
"""
