"""A real S3-compatible endpoint on loopback: moto's server, as Ray's own storage tests use.

Every client reaches it the way a cluster's nodes reach S3: through the environment AWS tools
read (`env`: AWS_ENDPOINT_URL and a key pair), which pyarrow (the sweep storage, Ray Tune,
corpora), boto3 (MLflow's artifacts) and the CLI all honour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from tests.conftest import free_port, wait_for


class ObjectStore:
    def __init__(self, log_path):
        self.port, self.log_path, self.process = free_port(), log_path, None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}

    def answers(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).status == 200
        except OSError:
            return False

    def start(self) -> "ObjectStore":
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.log_path.read_text()[-2000:]}")
            return self.answers()

        wait_for(up, timeout=120, what="the S3 endpoint (moto) to answer")
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None
