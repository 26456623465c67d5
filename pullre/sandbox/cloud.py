"""The sandbox's EC2: moto in server mode, in this process, with a pool of stopped instances.

Fake credentials go into this process's environment only (boto3 reads them from there); the
agents' passes get an environment without any ``AWS_`` variable, as a staging box has no keys.
moto is a development dependency, so a missing one is explained rather than a traceback.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Final

import boto3

REGION = "us-east-1"
INSTANCE_TYPE: Final = "t3.micro"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class MotoMissing(Exception):
    """moto is not installed; the message says how to install it."""


@dataclass
class Cloud:
    endpoint_url: str
    server: Any

    def stop(self) -> None:
        self.server.stop()


def start(pool_size: int) -> tuple[Cloud, list[str]]:
    """moto on a free local port and ``pool_size`` stopped instances; their ids."""
    try:
        from moto.ec2.models.amis import AMIS  # noqa: PLC0415 - a dev dependency
        from moto.server import ThreadedMotoServer  # noqa: PLC0415
    except ImportError:
        raise MotoMissing(
            "the sandbox needs moto: `.venv/bin/pip install -r requirements-dev.txt`"
        ) from None
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    cloud = Cloud(f"http://{host}:{port}", server)
    client = boto3.client("ec2", endpoint_url=cloud.endpoint_url, region_name=REGION)
    image = AMIS[0]["ami_id"]
    ids = []
    for number in range(1, pool_size + 1):
        reservation = client.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType=INSTANCE_TYPE,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": f"sandbox-stage-{number}"}],
                }
            ],
        )
        ids.append(reservation["Instances"][0]["InstanceId"])
    client.stop_instances(InstanceIds=ids)
    return cloud, ids
