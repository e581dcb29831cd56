"""Terraform's AWS provider against Beanpole's Elastic Beanstalk endpoint (issue #10).

A real server, the real `terraform` binary and hashicorp/aws 5.100.0 from the offline
provider mirror (`../shared/EB-API.md` (a)): a configuration of the kind EB users keep
(application with a version lifecycle, a bucket and a bundle object, a version, a saved
configuration, an environment with a dozen settings, VPC and IAM ones included) is applied,
planned again (nothing to change), changed (a new version and one property) while a client
sends requests through the load balancer (none may fail), planned again and destroyed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from harness import Load, wait_for

# The provider waits 10 s before each poll: create, update and destroy take a minute or so each.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

APPS = Path(__file__).parent.parent / "apps"
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
# The filesystem mirror holding registry.terraform.io/hashicorp/aws/5.100.0.
MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins"))
PROVIDER = MIRROR / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0"

APP = "tf-shop"
ENV = "tf-web"
CNAME_PREFIX = "tfweb"
STACK = "64bit Amazon Linux 2023 v4.3.0 running Python 3.11"

MAIN_TF = """\
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "%(access_key)s"
  secret_key                  = "%(secret_key)s"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  max_retries                 = 3 # as docs/terraform.md: the SDK's retry of a client race
  endpoints {
    elasticbeanstalk = "%(endpoint)s"
    s3               = "%(endpoint)s"
  }
}

variable "version_label" { type = string }
variable "bundle" { type = string }
variable "greeting" { type = string }

locals {
  stack = "%(stack)s"
}

resource "aws_elastic_beanstalk_application" "app" {
  name        = "%(app)s"
  description = "The shop, managed by Terraform"
  appversion_lifecycle {
    service_role          = "arn:aws:iam::123456789012:role/aws-elasticbeanstalk-service-role"
    max_count             = 10
    delete_source_from_s3 = true
  }
  tags = {
    team       = "web"
    managed-by = "terraform"
  }
}

resource "aws_s3_bucket" "bundles" {
  bucket = "tf-shop-bundles"
}

resource "aws_s3_object" "bundle" {
  bucket = aws_s3_bucket.bundles.id
  key    = "shop/${basename(var.bundle)}"
  source = var.bundle
  etag   = filemd5(var.bundle)
}

resource "aws_elastic_beanstalk_application_version" "v" {
  name        = var.version_label
  application = aws_elastic_beanstalk_application.app.name
  description = "Bundle ${basename(var.bundle)}"
  bucket      = aws_s3_bucket.bundles.id
  key         = aws_s3_object.bundle.key
  tags = {
    managed-by = "terraform"
  }
}

resource "aws_elastic_beanstalk_configuration_template" "base" {
  name                = "tf-base"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = local.stack
  setting {
    namespace = "aws:autoscaling:asg"
    name      = "MaxSize"
    value     = "3"
  }
}

resource "aws_elastic_beanstalk_environment" "web" {
  name                = "%(env)s"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = local.stack
  cname_prefix        = "%(cname_prefix)s"
  tier                = "WebServer"
  version_label       = aws_elastic_beanstalk_application_version.v.name
  poll_interval       = "10s"
  tags = {
    team       = "web"
    managed-by = "terraform"
  }

  setting {
    namespace = "aws:autoscaling:asg"
    name      = "MinSize"
    value     = "2"
  }
  setting {
    namespace = "aws:autoscaling:asg"
    name      = "MaxSize"
    value     = "4"
  }
  setting {
    namespace = "aws:elasticbeanstalk:command"
    name      = "DeploymentPolicy"
    value     = "Rolling"
  }
  setting {
    namespace = "aws:elasticbeanstalk:command"
    name      = "BatchSizeType"
    value     = "Fixed"
  }
  setting {
    namespace = "aws:elasticbeanstalk:command"
    name      = "BatchSize"
    value     = "1"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment:process:default"
    name      = "HealthCheckPath"
    value     = "/"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment:process:default"
    name      = "Port"
    value     = "80"
  }
  setting {
    namespace = "aws:elasticbeanstalk:application:environment"
    name      = "GREETING"
    value     = var.greeting
  }
  setting {
    namespace = "aws:elasticbeanstalk:application:environment"
    name      = "SHOP_CURRENCY"
    value     = "EUR"
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "VPCId"
    value     = "vpc-0123456789abcdef0"
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788"
  }
  setting {
    namespace = "aws:autoscaling:launchconfiguration"
    name      = "InstanceType"
    value     = "t3.small"
  }
  setting {
    namespace = "aws:autoscaling:launchconfiguration"
    name      = "IamInstanceProfile"
    value     = "aws-elasticbeanstalk-ec2-role"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment"
    name      = "ServiceRole"
    value     = "arn:aws:iam::123456789012:role/aws-elasticbeanstalk-service-role"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment"
    name      = "LoadBalancerType"
    value     = "application"
  }
}

output "cname" {
  value = aws_elastic_beanstalk_environment.web.cname
}

output "environment_id" {
  value = aws_elastic_beanstalk_environment.web.id
}
"""

CLI_CONFIG = """\
provider_installation {
  filesystem_mirror {
    path    = "%(mirror)s"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct { exclude = ["registry.terraform.io/hashicorp/*"] }
}
"""


class Terraform:
    """`terraform` in one working folder, offline, with its own CLI config; every run's
    output is kept so a failure shows what terraform said."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        config = workdir.parent / "terraformrc"
        config.write_text(CLI_CONFIG % {"mirror": MIRROR})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
        env.update(
            TF_CLI_CONFIG_FILE=str(config),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",  # no version check against checkpoint-api.hashicorp.com
            HOME=str(workdir.parent),  # no user config (~/.aws, ~/.terraformrc) leaks in
        )
        self.env = env
        self.transcript: list[str] = []

    def run(
        self, *args: str, codes: tuple[int, ...] = (0,), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        # Its own session: on a timeout the provider plugin it started is killed with it.
        proc = subprocess.Popen(
            [TERRAFORM, *args, "-no-color"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            self.transcript.append(f"$ terraform {' '.join(args)} (timed out)\n{stdout}{stderr}")
            raise AssertionError(
                f"terraform {' '.join(args)} did not end within {timeout} s\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            ) from None
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        self.transcript.append(
            f"$ terraform {' '.join(args)} -> exit {proc.returncode} after "
            f"{time.monotonic() - started:.0f} s\n{stdout}{stderr}"
        )
        print(self.transcript[-1])  # pytest shows it when the test fails
        if proc.returncode not in codes:
            raise AssertionError(
                f"terraform {' '.join(args)} exited {proc.returncode} (expected "
                f"{' or '.join(map(str, codes))})\nstdout:\n{stdout}\nstderr:\n{stderr}"
            )
        return result


def bundle(tmp_path: Path, name: str) -> Path:
    """A zip of tests/apps/pid whose VERSION file says ``name``."""
    path = tmp_path / "bundles" / f"pid-{name}.zip"
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for file in sorted((APPS / "pid").iterdir()):
            if file.is_file() and file.name != "VERSION":
                z.write(file, file.name)
        z.writestr("VERSION", name + "\n")
    return path


def write_vars(workdir: Path, label: str, source: Path, greeting: str) -> None:
    (workdir / "terraform.tfvars").write_text(
        f'version_label = "{label}"\nbundle = "{source}"\ngreeting = "{greeting}"\n'
    )


def served(bp, host: str = CNAME_PREFIX) -> dict:
    status, body = bp.get(host)
    assert status == 200, (status, body)
    return json.loads(body)


def get_with_host(port: int, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def live(bp) -> list[dict]:
    envs = json.loads(bp.cli("list", "--json").stdout)
    return [e for e in envs if e["status"] != "Terminated"]


def test_terraform_applies_plans_clean_updates_under_load_and_destroys(beanpole, tmp_path):
    if not os.access(TERRAFORM, os.X_OK):
        pytest.skip(f"terraform is not installed ({TERRAFORM} is missing)")
    if not any(PROVIDER.glob("*/terraform-provider-aws_*")):
        pytest.skip(
            f"the hashicorp/aws 5.100.0 provider is not in the mirror {MIRROR} "
            "(set TF_PROVIDER_MIRROR to a filesystem mirror holding it)"
        )
    bp = beanpole
    key = json.loads(bp.cli("keys", "create", "--json", "--description", "terraform").stdout)
    workdir = tmp_path / "tf"
    workdir.mkdir()
    (workdir / "main.tf").write_text(
        MAIN_TF
        % {
            "access_key": key["access_key_id"],
            "secret_key": key["secret_access_key"],
            "endpoint": bp.eb_endpoint,
            "stack": STACK,
            "app": APP,
            "env": ENV,
            "cname_prefix": CNAME_PREFIX,
        }
    )
    v1, v2 = bundle(tmp_path, "v1"), bundle(tmp_path, "v2")
    write_vars(workdir, "v1", v1, "hello from terraform")
    tf = Terraform(workdir)

    tf.run("init", timeout=120)

    # Create: the environment answers through the load balancer, by its CNAME prefix.
    tf.run("apply", "-auto-approve", timeout=360)
    body = wait_for(lambda: served(bp), 60, "the environment to answer")
    assert body["version"] == "v1"
    assert body["greeting"] == "hello from terraform"
    info = bp.status(ENV)
    assert info["status"] == "Ready"
    assert info["version"] == "v1"
    assert len(info["instances"]) == 2  # MinSize 2
    outputs = json.loads(tf.run("output", "-json").stdout)
    assert outputs["cname"]["value"] == f"{CNAME_PREFIX}.us-east-1.elasticbeanstalk.com"
    assert outputs["environment_id"]["value"] == info["id"]
    # HAProxy routes the EB form of the CNAME too.
    status, text = get_with_host(bp.lb_port, outputs["cname"]["value"])
    assert status == 200 and json.loads(text)["version"] == "v1", (status, text)

    # Everything read back as written: nothing to change.
    plan = tf.run("plan", "-detailed-exitcode", timeout=180)
    assert "No changes." in plan.stdout

    # A new version and one changed property, deployed Rolling one at a time under load.
    write_vars(workdir, "v2", v2, "bonjour")
    with Load(bp.lb_port, CNAME_PREFIX) as load:
        wait_for(lambda: load.ok > 20, 30, "traffic before the update")
        tf.run("apply", "-auto-approve", timeout=360)
        seen = load.ok
        wait_for(lambda: load.ok > seen + 20, 30, "traffic after the update")
    assert load.failures == [], load.failures[:5]
    versions = [json.loads(b)["version"] for b in load.bodies]
    assert versions[0] == "v1" and versions[-1] == "v2", (versions[0], versions[-1])
    body = served(bp)
    assert (body["version"], body["greeting"]) == ("v2", "bonjour")
    info = bp.status(ENV)
    assert info["version"] == "v2"
    assert {i["version"] for i in info["instances"]} == {"v2"}
    assert len(info["instances"]) == 2

    plan = tf.run("plan", "-detailed-exitcode", timeout=180)
    assert "No changes." in plan.stdout

    tf.run("destroy", "-auto-approve", timeout=300)
    assert [e["name"] for e in live(bp)] == []
    status, _ = bp.get(CNAME_PREFIX)
    assert status != 200
