"""The EC2 adapter through real boto3, real HTTP and moto's server (and the fault proxy)."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.exceptions import ClientError

from pullre.config import AwsSettings
from pullre.ec2.boto3_adapter import make_client, make_ec2
from pullre.ec2.port import (
    MAX_FILTER_VALUES,
    Ec2Error,
    Ec2Throttled,
    IncorrectState,
    InstanceInfo,
    InstanceNotFound,
    InsufficientCapacity,
)
from tests.ec2_fixtures import REGION, Ec2Sandbox, FaultyEc2

VANISHED_ID = "i-0123456789abcdef0"


def test_describe_pages_through_a_large_pool(ec2: Ec2Sandbox) -> None:
    ids = ec2.create_instances(250)
    adapter = ec2.adapter_with(describe_page_size=50)

    observed = adapter.describe(ids)

    assert set(observed) == set(ids)
    assert {info.state for info in observed.values()} == {"stopped"}
    assert [observed[i].name for i in ids] == [f"pullre-stage-{n:03d}" for n in range(1, 251)]
    # 250 ids make two filter chunks (EC2 takes 200 filter values per call): 200 + 50 ids,
    # paged at 50 that is 4 + 1 calls, and no retries.
    assert MAX_FILTER_VALUES == 200
    assert adapter.calls == {"DescribeInstances": 4 + 1}
    assert adapter.attempts == {"DescribeInstances": 4 + 1}
    # At the default page size (EC2's maximum, 1000) the same pool costs one call per chunk.
    assert ec2.adapter.describe(ids) == observed
    assert ec2.adapter.calls == {"DescribeInstances": 2}
    ec2.adapter.reset_counts()  # as a reconcile pass does when it starts
    assert ec2.adapter.calls == {}
    assert ec2.adapter.attempts == {}


def test_describe_skips_vanished_ids_and_reports_terminated_ones(ec2: Ec2Sandbox) -> None:
    ids = ec2.create_instances(3, tags={"pullre:pool": "staging"})
    ec2.client.terminate_instances(InstanceIds=[ids[2]])
    # Why the adapter filters instead of passing InstanceIds: one unknown id fails the call.
    with pytest.raises(ClientError) as raw:
        ec2.client.describe_instances(InstanceIds=[ids[0], VANISHED_ID])
    assert raw.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"

    observed = ec2.adapter.describe([*ids, VANISHED_ID, ids[0]])

    assert set(observed) == set(ids)
    assert observed[ids[2]].state == "terminated"
    first = observed[ids[0]]
    assert first == InstanceInfo(
        instance_id=ids[0],
        state="stopped",
        private_ip=first.private_ip,
        name="pullre-stage-001",
        instance_type="t3.micro",
        tags={"Name": "pullre-stage-001", "pullre:pool": "staging"},
    )
    assert first.private_ip is not None
    assert first.private_ip.count(".") == 3
    assert not first.in_transition
    assert ec2.adapter.calls == {"DescribeInstances": 1}


def test_describe_of_an_empty_pool_makes_no_call(ec2: Ec2Sandbox) -> None:
    assert ec2.adapter.describe([]) == {}
    assert ec2.adapter.calls == {}


def test_start_and_stop_report_the_transition_and_moto_completes_it_at_once(
    ec2: Ec2Sandbox,
) -> None:
    (instance_id,) = ec2.create_instances(1)

    assert ec2.adapter.start(instance_id) == "pending"
    after_start = ec2.adapter.describe([instance_id])[instance_id]
    assert ec2.adapter.stop(instance_id) == "stopping"
    after_stop = ec2.adapter.describe([instance_id])[instance_id]

    # moto answers with EC2's transitional states but has finished the move by the next look.
    assert after_start.state == "running"
    assert after_stop.state == "stopped"
    assert ec2.adapter.calls == {"StartInstances": 1, "StopInstances": 1, "DescribeInstances": 2}


def test_in_transition_marks_the_states_ec2_leaves_by_itself() -> None:
    def info(state: str) -> InstanceInfo:
        return InstanceInfo("i-1", state, None, "", "t3.micro")

    moving = {
        s
        for s in ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
        if info(s).in_transition
    }
    assert moving == {"pending", "stopping", "shutting-down"}


def test_start_of_an_unknown_instance_raises_instance_not_found(ec2: Ec2Sandbox) -> None:
    with pytest.raises(InstanceNotFound) as caught:
        ec2.adapter.start(VANISHED_ID)
    assert caught.value.code == "InvalidInstanceID.NotFound"
    assert caught.value.instance_id == VANISHED_ID
    assert VANISHED_ID in str(caught.value)


def test_list_instances_pages_through_the_account_and_filters_by_tag(ec2: Ec2Sandbox) -> None:
    pool = ec2.create_instances(7, tags={"pullre:pool": "staging"})
    others = ec2.create_instances(3, name_prefix=None, stopped=False)
    (gone,) = ec2.create_instances(1, name_prefix="old", tags={"pullre:pool": "staging"})
    ec2.client.terminate_instances(InstanceIds=[gone])

    first = ec2.adapter.list_instances(page_size=5)
    assert len(first.instances) == 5
    assert first.next_token is not None
    second = ec2.adapter.list_instances(page_token=first.next_token, page_size=5)
    assert second.next_token is None
    listed = {info.instance_id: info for info in [*first.instances, *second.instances]}
    assert set(listed) == {*pool, *others}  # terminated ones left out
    assert {listed[i].name for i in others} == {""}
    assert {listed[i].state for i in others} == {"running"}
    assert listed[others[0]].tags == {}

    tagged = ec2.adapter.list_instances(tag_filter=("pullre:pool", "staging"), page_size=100)
    assert {info.instance_id for info in tagged.instances} == set(pool)
    assert tagged.next_token is None
    assert ec2.adapter.calls == {"DescribeInstances": 3}


def test_page_sizes_outside_ec2_bounds_are_refused(ec2: Ec2Sandbox) -> None:
    with pytest.raises(ValueError, match="between 5 and 1000"):
        ec2.adapter.list_instances(page_size=4)
    with pytest.raises(ValueError, match="between 5 and 1000"):
        ec2.adapter_with(describe_page_size=1001)
    assert ec2.adapter.calls == {}


def test_throttling_shorter_than_the_retry_budget_is_absorbed(faulty_ec2: FaultyEc2) -> None:
    ids = faulty_ec2.sandbox.create_instances(3)
    adapter = faulty_ec2.adapter_with(max_attempts=3)
    faulty_ec2.proxy.throttle_next(2, action="DescribeInstances")

    observed = adapter.describe(ids)

    assert set(observed) == set(ids)
    assert faulty_ec2.proxy.count("DescribeInstances") == 3
    assert adapter.calls == {"DescribeInstances": 1}
    assert adapter.attempts == {"DescribeInstances": 3}


def test_throttling_beyond_the_retry_budget_raises_ec2_throttled(faulty_ec2: FaultyEc2) -> None:
    (instance_id,) = faulty_ec2.sandbox.create_instances(1)
    adapter = faulty_ec2.adapter_with(max_attempts=2)
    faulty_ec2.proxy.throttle_next(100)

    with pytest.raises(Ec2Throttled) as caught:
        adapter.start(instance_id)

    assert caught.value.code == "RequestLimitExceeded"
    assert caught.value.operation == "StartInstances"
    assert "after 1 retries" in str(caught.value)
    assert faulty_ec2.proxy.count("StartInstances") == 2
    assert adapter.attempts == {"StartInstances": 2}
    assert faulty_ec2.sandbox.state_of(instance_id) == "stopped"  # nothing reached moto


def test_insufficient_capacity_raises_after_retries_and_another_server_starts(
    faulty_ec2: FaultyEc2,
) -> None:
    first, second = faulty_ec2.sandbox.create_instances(2)
    adapter = faulty_ec2.adapter_with(max_attempts=3)
    # EC2 answers 500, which botocore's standard mode retries like any server error.
    faulty_ec2.proxy.fail_next(3, "InsufficientInstanceCapacity", action="StartInstances")

    with pytest.raises(InsufficientCapacity) as caught:
        adapter.start(first)
    assert caught.value.instance_id == first
    assert "t3.micro capacity" in str(caught.value)
    assert faulty_ec2.proxy.count("StartInstances") == 3
    assert faulty_ec2.sandbox.state_of(first) == "stopped"

    assert adapter.start(second) == "pending"
    assert faulty_ec2.sandbox.state_of(second) == "running"


def test_a_single_capacity_error_is_retried_away(faulty_ec2: FaultyEc2) -> None:
    (instance_id,) = faulty_ec2.sandbox.create_instances(1)
    adapter = faulty_ec2.adapter_with(max_attempts=3)
    faulty_ec2.proxy.fail_next(1, "InsufficientInstanceCapacity", action="StartInstances")

    assert adapter.start(instance_id) == "pending"
    assert adapter.calls == {"StartInstances": 1}
    assert adapter.attempts == {"StartInstances": 2}


def test_incorrect_instance_state_raises_incorrect_state_without_retrying(
    faulty_ec2: FaultyEc2,
) -> None:
    (instance_id,) = faulty_ec2.sandbox.create_instances(1)
    # moto never refuses a start; the proxy answers as EC2 does for an instance still stopping.
    faulty_ec2.proxy.fail_next(1, "IncorrectInstanceState", action="StartInstances")

    with pytest.raises(IncorrectState) as caught:
        faulty_ec2.adapter.start(instance_id)

    assert caught.value.code == "IncorrectInstanceState"
    assert f"The instance '{instance_id}' is not in a state" in str(caught.value)
    assert faulty_ec2.proxy.count("StartInstances") == 1
    assert faulty_ec2.adapter.start(instance_id) == "pending"  # the next pass tries again


def test_an_unreachable_endpoint_raises_ec2_error(boto3_session: boto3.session.Session) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = AwsSettings(region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    adapter = make_ec2(settings, max_attempts=2, connect_timeout=1, session=boto3_session)

    with pytest.raises(Ec2Error) as caught:
        adapter.describe(["i-1"])

    assert caught.value.operation == "DescribeInstances"
    assert "EndpointConnectionError" in str(caught.value)
    assert adapter.calls == {"DescribeInstances": 1}


def test_messages_never_carry_an_access_key_id() -> None:
    error = Ec2Error("AuthFailure: key AKIAIOSFODNN7EXAMPLE is not valid")
    assert "AKIAIOSFODNN7EXAMPLE" not in str(error)
    assert "<access-key-id>" in str(error)


def test_client_is_built_from_settings_with_explicit_retries_and_timeouts(
    boto3_session: boto3.session.Session,
) -> None:
    local = make_client(
        AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9"), session=boto3_session
    )
    aws = make_client(
        AwsSettings(region="eu-west-1", endpoint_url=""), max_attempts=5, session=boto3_session
    )

    # botocore keeps the options as plain attributes of Config; its stubs do not declare them.
    local_options, aws_options = vars(local.meta.config), vars(aws.meta.config)
    assert local.meta.endpoint_url == "http://127.0.0.1:9"
    assert local.meta.region_name == "eu-west-1"
    assert local_options["retries"] == {"mode": "standard", "total_max_attempts": 3}
    assert local_options["connect_timeout"] == 5
    assert local_options["read_timeout"] == 30
    assert aws.meta.endpoint_url == "https://ec2.eu-west-1.amazonaws.com"
    assert aws_options["retries"] == {"mode": "standard", "total_max_attempts": 5}


def test_make_ec2_talks_to_the_configured_endpoint(ec2: Ec2Sandbox) -> None:
    ids = ec2.create_instances(2)
    adapter = make_ec2(AwsSettings(region=REGION, endpoint_url=ec2.endpoint_url))

    assert set(adapter.describe(ids)) == set(ids)
    assert adapter.calls == {"DescribeInstances": 1}
