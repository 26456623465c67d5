"""EC2, the pool's instances: a port (``port``) and its boto3 implementation (``boto3_adapter``).

Public names: ``port.Ec2`` (describe, list, start, stop, call counts), ``port.InstanceInfo``,
``port.InstancePage``, ``port.Ec2Error`` and its subclasses; ``boto3_adapter.make_ec2`` builds the
real one from ``[aws]`` settings (entry points only: the web app is given it by ``create_app``).

May import: ``config`` and boto3/botocore (``boto3_adapter`` only).
"""
