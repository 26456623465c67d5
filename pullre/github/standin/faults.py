"""The broken answers GitHub and the proxies before it really send, for fault injection.

GitHub's edge answers a 5xx with its HTML "Unicorn!" page, a proxy or gateway answers 403/502/504
with its own HTML page, and a connection cut mid-answer leaves JSON that stops half-way. Clients
must survive all three, so the stand-in can answer each on chosen routes (``fail_next``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Literal

from pullre.github.standin.state import Fail, Response

FaultBody = Literal["json", "html", "truncated"]

UNICORN = """<!DOCTYPE html>
<html>
  <head>
    <meta http-equiv="Content-type" content="text/html; charset=utf-8">
    <title>Unicorn! &middot; GitHub</title>
    <style type="text/css" media="screen">
      body { background-color: #f1f1f1; margin: 0; font-family: "Helvetica Neue", sans-serif; }
      .container { margin: 50px auto 40px auto; width: 600px; text-align: center; }
    </style>
  </head>
  <body>
    <div class="container">
      <p><strong>We had issues producing the response to your request.</strong></p>
      <p>Sorry about that. Please try refreshing and contact us if the problem persists.</p>
    </div>
  </body>
</html>
"""

PROXY_PAGE = """<html>
<head><title>{status} {phrase}</title></head>
<body>
<center><h1>{status} {phrase}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""

#: The start of a pull listing, cut off where a dropped connection would leave it.
TRUNCATED = (
    b'[{"url":"https://api.github.com/repos/acme/shop/pulls/1","id":1,"number":1,'
    b'"state":"open","title":"A cha'
)


def fault(status: int, body: FaultBody) -> Response:
    """One broken answer: GitHub's JSON error, an HTML page, or truncated JSON."""
    if body == "json":
        return Fail(status, HTTPStatus(status).phrase).response
    if body == "truncated":
        return Response(status, raw=TRUNCATED, content_type="application/json; charset=utf-8")
    page = (
        UNICORN
        if status in (500, 502, 503)
        else PROXY_PAGE.format(status=status, phrase=HTTPStatus(status).phrase)
    )
    return Response(status, raw=page.encode(), content_type="text/html; charset=utf-8")
