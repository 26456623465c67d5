"""EC2 for tests: moto's real server over HTTP, and a fault-injecting proxy in front of it.

Everything goes through real boto3 and real HTTP; nothing in boto3 is patched. What moto cannot
do (throttle, run out of capacity, refuse a start because the instance is stopping) the proxy
does, answering with the error bodies and status codes EC2 itself uses.

Moto moves instances between states at once: StartInstances answers "pending" but the instance
is "running" on the next describe; StopInstances answers "stopping" and it is "stopped" next.
EC2 instances are not among moto's state-managed models, so moto never shows one in
"stopping" or "pending". The proxy's ``report_state`` rewrites DescribeInstances answers so a
test can show a reconciler an instance mid-transition, and ``IncorrectInstanceState`` stands in
for EC2 refusing a call in such a state.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import boto3
import pytest
from moto.ec2.models.amis import AMIS
from moto.server import ThreadedMotoServer

from pullre.config import AwsSettings
from pullre.ec2.boto3_adapter import Boto3Ec2, make_client
from pullre.ec2.port import Ec2, InstanceInfo, InstancePage

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType

REGION = "us-east-1"
#: An image from moto's bundled catalogue; looking one up with DescribeImages costs a second.
IMAGE_ID: str = next(
    (a["ami_id"] for a in AMIS if "ubuntu" in a.get("name", "")), AMIS[0]["ami_id"]
)

#: Environment boto3 reads credentials and endpoints from; set to fakes for the session so no
#: test can reach a real account, and restored afterwards.
_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_EC2": None,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(scope="session")
def aws_test_credentials() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _AWS_ENVIRONMENT}
    for name, value in _AWS_ENVIRONMENT.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def moto_ec2_server(aws_test_credentials: None) -> Iterator[str]:
    """moto in server mode on a free local port; yields its endpoint URL."""
    # werkzeug logs every request at INFO; hundreds of lines per test drown a failure's output.
    werkzeug_log = logging.getLogger("werkzeug")
    saved_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    werkzeug_log.setLevel(saved_level)


def reset_moto(endpoint_url: str) -> None:
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(scope="session")
def boto3_session(aws_test_credentials: None) -> boto3.session.Session:
    """One boto3 session for all test clients: each new session reloads EC2's service model."""
    return boto3.session.Session()


def make_adapter(endpoint_url: str, session: boto3.session.Session, **options: Any) -> Boto3Ec2:
    """An adapter on ``endpoint_url``; ``describe_page_size`` and client options pass through."""
    page_size = options.pop("describe_page_size", 1000)
    settings = AwsSettings(region=REGION, endpoint_url=endpoint_url)
    client = make_client(settings, session=session, **options)
    return Boto3Ec2(client, describe_page_size=page_size)


@dataclass
class Ec2Sandbox:
    """A freshly reset moto EC2: a raw client for set-up and the adapter under test."""

    endpoint_url: str
    session: boto3.session.Session = field(repr=False)
    client: EC2Client = field(repr=False)
    adapter: Boto3Ec2

    def adapter_with(self, **options: Any) -> Boto3Ec2:
        return make_adapter(self.endpoint_url, self.session, **options)

    def create_instances(
        self,
        count: int,
        *,
        name_prefix: str | None = "pullre-stage",
        tags: Mapping[str, str] | None = None,
        stopped: bool = True,
        instance_type: InstanceTypeType = "t3.micro",
    ) -> list[str]:
        """Launch ``count`` instances, one reservation each, as a pool is built up over time.

        One reservation per instance also makes moto page the way EC2 does: moto counts
        ``MaxResults`` in reservations, EC2 in instances.
        """
        ids: list[str] = []
        for number in range(1, count + 1):
            all_tags = dict(tags or {})
            if name_prefix is not None:
                all_tags["Name"] = f"{name_prefix}-{number:03d}"
            extra: dict[str, Any] = {}
            if all_tags:
                extra["TagSpecifications"] = [
                    {
                        "ResourceType": "instance",
                        "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()],
                    }
                ]
            reservation = self.client.run_instances(
                ImageId=IMAGE_ID, MinCount=1, MaxCount=1, InstanceType=instance_type, **extra
            )
            ids.append(reservation["Instances"][0]["InstanceId"])
        if stopped and ids:
            self.client.stop_instances(InstanceIds=ids)
        return ids

    def state_of(self, instance_id: str) -> str:
        """The state as moto holds it, read without the adapter."""
        reservations = self.client.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]


@pytest.fixture
def ec2(moto_ec2_server: str, boto3_session: boto3.session.Session) -> Ec2Sandbox:
    """An empty moto EC2 (state reset) with an adapter pointed at it."""
    reset_moto(moto_ec2_server)
    settings = AwsSettings(region=REGION, endpoint_url=moto_ec2_server)
    return Ec2Sandbox(
        endpoint_url=moto_ec2_server,
        session=boto3_session,
        client=make_client(settings, session=boto3_session),
        adapter=make_adapter(moto_ec2_server, boto3_session),
    )


# --- fault injection -------------------------------------------------------------------------


class PassThroughEc2:
    """The :class:`~pullre.ec2.Ec2` port ``real``, call for call.

    A test that needs one operation to misbehave in a way no EC2 answer gives (a crash, a bug in
    the port) subclasses this and overrides only that method.
    """

    def __init__(self, real: Ec2) -> None:
        self.real = real

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        return self.real.describe(instance_ids)

    def list_instances(
        self,
        tag_filter: tuple[str, str] | None = None,
        page_token: str | None = None,
        page_size: int = 100,
    ) -> InstancePage:
        return self.real.list_instances(tag_filter, page_token, page_size)

    def start(self, instance_id: str) -> str:
        return self.real.start(instance_id)

    def stop(self, instance_id: str) -> str:
        return self.real.stop(instance_id)

    @property
    def calls(self) -> Mapping[str, int]:
        return self.real.calls


#: HTTP status and message EC2 answers each injected error with.
EC2_ERRORS: dict[str, tuple[int, str]] = {
    "RequestLimitExceeded": (503, "Request limit exceeded."),
    "InsufficientInstanceCapacity": (
        500,
        "We currently do not have sufficient {instance_type} capacity in the Availability Zone "
        "you requested (us-east-1a). Our system will be working on provisioning additional "
        "capacity.",
    ),
    "IncorrectInstanceState": (
        400,
        "The instance '{instance_id}' is not in a state from which it can be {verb}.",
    ),
}
_VERBS = {"StartInstances": "started", "StopInstances": "stopped"}
#: EC2's numeric code for each instance state, as DescribeInstances reports it.
STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass
class _Fault:
    code: str
    action: str | None
    remaining: int


@dataclass
class _Rewrite:
    instance_id: str
    state: str
    remaining: int


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy saw, in arrival order (retries are requests of their own)."""

    action: str
    #: ``InstanceId.N`` parameters (start/stop); DescribeInstances filters are not listed.
    instance_ids: tuple[str, ...]
    #: The access key id the request was signed with, so a test can tell processes apart.
    access_key: str
    #: The EC2 error code the proxy answered with, or None when moto answered.
    fault: str | None
    at: float


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the crash tests do that on purpose) is no proxy error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Ec2FaultProxy:
    """A local HTTP proxy before moto that answers chosen requests with EC2 errors.

    ``fail_next`` queues faults; a request takes the first queued fault whose action matches
    and that has answers left, every other request is forwarded to moto untouched. ``actions``
    lists every request's Action in arrival order, retries included, and ``requests`` the same
    with instance ids, signing key and fault. ``report_state`` makes DescribeInstances answers
    show an instance in another state; ``hold`` parks requests of one action until released.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._rewrites: list[_Rewrite] = []
        self.actions: list[str] = []
        self.requests: list[ProxiedRequest] = []
        self._hold_action: str | None = None
        self._held: list[str] = []  # access keys of requests parked right now
        self._released = threading.Event()
        self._released.set()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def clear(self) -> None:
        self.release_hold()
        with self._lock:
            self._faults.clear()
            self._rewrites.clear()
            self.actions.clear()
            self.requests.clear()

    def fail_next(self, count: int, code: str, *, action: str | None = None) -> None:
        assert code in EC2_ERRORS, f"no EC2 error shape known for {code}"
        with self._lock:
            self._faults.append(_Fault(code, action, count))

    def throttle_next(self, count: int, *, action: str | None = None) -> None:
        self.fail_next(count, "RequestLimitExceeded", action=action)

    def count(self, action: str) -> int:
        with self._lock:
            return self.actions.count(action)

    def report_state(self, instance_id: str, state: str, *, times: int) -> None:
        """The next ``times`` DescribeInstances answers that list the instance show ``state``.

        Moto settles every start and stop at once; this is how a test shows a client an
        instance that is still ``stopping`` or ``pending``, through real boto3 and HTTP.
        """
        assert state in STATE_CODES, f"no EC2 state {state!r}"
        with self._lock:
            self._rewrites.append(_Rewrite(instance_id, state, times))

    def forwarded(self, action: str) -> Counter[str]:
        """Instance id → requests of ``action`` naming it that reached moto (faults left out)."""
        with self._lock:
            return Counter(
                instance_id
                for request in self.requests
                if request.action == action and request.fault is None
                for instance_id in request.instance_ids
            )

    def hold(self, action: str) -> None:
        """Park every request of ``action`` (before it reaches moto) until ``release_hold``."""
        with self._lock:
            self._hold_action = action
            self._released.clear()

    def release_hold(self) -> None:
        with self._lock:
            self._hold_action = None
            self._released.set()

    def held(self) -> list[str]:
        """Access keys of the requests parked by ``hold`` right now."""
        with self._lock:
            return list(self._held)

    def _take_fault(
        self, action: str, instance_ids: tuple[str, ...] = (), access_key: str = ""
    ) -> _Fault | None:
        with self._lock:
            self.actions.append(action)
            taken = None
            for fault in self._faults:
                if fault.remaining > 0 and fault.action in (None, action):
                    fault.remaining -= 1
                    taken = fault
                    break
            self.requests.append(
                ProxiedRequest(
                    action,
                    instance_ids,
                    access_key,
                    taken.code if taken else None,
                    time.monotonic(),
                )
            )
        return taken

    def _wait_if_held(self, action: str, access_key: str, timeout: float = 120.0) -> None:
        with self._lock:
            if self._hold_action != action:
                return
            self._held.append(access_key)
        try:
            self._released.wait(timeout)
        finally:
            with self._lock:
                self._held.remove(access_key)

    def _rewrite(self, action: str, payload: bytes) -> bytes:
        if action != "DescribeInstances":
            return payload
        text = payload.decode("utf-8")
        with self._lock:
            for rewrite in self._rewrites:
                if rewrite.remaining <= 0:
                    continue
                pattern = re.compile(
                    rf"(<instanceId>{re.escape(rewrite.instance_id)}</instanceId>.*?"
                    r"<instanceState>)<code>\d+</code><name>[a-z-]+</name>(</instanceState>)",
                    re.DOTALL,
                )
                state = f"<code>{STATE_CODES[rewrite.state]}</code><name>{rewrite.state}</name>"
                text, found = pattern.subn(rf"\g<1>{state}\g<2>", text, count=1)
                if found:
                    rewrite.remaining -= 1
        return text.encode("utf-8")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = parse_qs(body.decode("utf-8"))
                action = params.get("Action", [""])[0]
                instance_ids = tuple(
                    values[0]
                    for key, values in sorted(params.items())
                    if key.startswith("InstanceId.")
                )
                match = _CREDENTIAL.search(self.headers.get("Authorization") or "")
                access_key = match.group(1) if match else ""
                proxy._wait_if_held(action, access_key)
                fault = proxy._take_fault(action, instance_ids, access_key)
                if fault is None:
                    self._forward(body, action)
                else:
                    self._answer_error(fault.code, action, params)

            def _forward(self, body: bytes, action: str) -> None:
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                    if response.status == 200:
                        payload = proxy._rewrite(action, payload)
                    skipped = {"connection", "transfer-encoding", "content-length", "keep-alive"}
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in skipped:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    upstream.close()

            def _answer_error(self, code: str, action: str, params: dict[str, list[str]]) -> None:
                status, template = EC2_ERRORS[code]
                message = template.format(
                    instance_id=params.get("InstanceId.1", ["?"])[0],
                    instance_type="t3.micro",
                    verb=_VERBS.get(action, "changed"),
                )
                # EC2's error document: note RequestID, not the RequestId other services use.
                payload = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Response><Errors><Error><Code>{code}</Code>"
                    f"<Message>{escape(message)}</Message></Error></Errors>"
                    f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@dataclass
class FaultyEc2:
    """The sandbox seen through the fault proxy: ``adapter`` talks to the proxy."""

    sandbox: Ec2Sandbox
    proxy: Ec2FaultProxy
    adapter: Boto3Ec2

    def adapter_with(self, **options: Any) -> Boto3Ec2:
        return make_adapter(self.proxy.endpoint_url, self.sandbox.session, **options)


@pytest.fixture(scope="session")
def ec2_fault_proxy(moto_ec2_server: str) -> Iterator[Ec2FaultProxy]:
    proxy = Ec2FaultProxy(moto_ec2_server)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def faulty_ec2(ec2: Ec2Sandbox, ec2_fault_proxy: Ec2FaultProxy) -> Iterator[FaultyEc2]:
    """moto behind the fault proxy, with no faults queued; faults are cleared afterwards too."""
    ec2_fault_proxy.clear()
    yield FaultyEc2(
        sandbox=ec2,
        proxy=ec2_fault_proxy,
        adapter=make_adapter(ec2_fault_proxy.endpoint_url, ec2.session),
    )
    ec2_fault_proxy.clear()
