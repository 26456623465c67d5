"""A small stateful GitHub REST server on 127.0.0.1, for tests and the sandbox.

Modules: ``server`` (routing, auth, error injection), ``handler`` (the HTTP request handler:
reading a request, writing a response), ``faults`` (the broken answers it can inject: HTML error
pages, truncated JSON), ``resources`` (the route table, pulls and issue comments in the JSON
shapes GitHub documents), ``deployments`` (deployments, their statuses, commit statuses),
``contents`` (repository contents at a ref), ``state`` (what it stores and the driving API tests
use to change it).

Standard library only; nothing else of pullre.
"""
