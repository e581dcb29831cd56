"""Elastic Beanstalk's own API, driven by boto3 against a real Beanpole server: every
action Beanpole answers, the errors clients branch on, and the semantics they rely on
(settings echoed verbatim, events by request id, EB's CNAME routed by HAProxy)."""

from __future__ import annotations

import http.client
import io
import json
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import wait_for

APPS = Path(__file__).parent.parent / "apps"
pytestmark = pytest.mark.slow

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"})


def _clients(bp, key_id=None, secret=None):
    if key_id is None:
        key = json.loads(bp.cli("keys", "create", "--json").stdout)
        key_id, secret = key["access_key_id"], key["secret_access_key"]
    kwargs = {
        "endpoint_url": bp.eb_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "config": NO_RETRY,
    }
    return boto3.client("elasticbeanstalk", **kwargs), boto3.client("s3", **kwargs)


def _zip(folder: Path, **extra: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in extra:
                z.write(path, path.relative_to(folder).as_posix())
        for name, text in extra.items():
            z.writestr(name, text)
    return out.getvalue()


def _version(eb, s3, app: str, label: str, bucket: str = "bundles", **extra: str) -> None:
    s3.put_object(Bucket=bucket, Key=f"{app}/{label}.zip", Body=_zip(APPS / "pid", **extra))
    eb.create_application_version(
        ApplicationName=app,
        VersionLabel=label,
        SourceBundle={"S3Bucket": bucket, "S3Key": f"{app}/{label}.zip"},
        Process=False,
    )


def _code(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")


def _status(eb, env_id: str) -> str:
    envs = eb.describe_environments(EnvironmentIds=[env_id])["Environments"]
    return envs[0]["Status"] if envs else "absent"


def _wait_status(eb, env_id: str, wanted: str, timeout: float = 180) -> None:
    wait_for(lambda: _status(eb, env_id) == wanted, timeout, f"environment {wanted}")


def test_every_request_is_signed_and_an_unknown_action_is_a_400(beanpole):
    status = json.loads(beanpole.cli("server", "status", "--json").stdout)
    assert status["server"] is True and status["eb_endpoint"] == beanpole.eb_endpoint
    eb, _ = _clients(beanpole)
    assert eb.describe_applications()["Applications"] == []
    stranger, _ = _clients(beanpole, "AKIAUNKNOWNUNKNOWN00", "x" * 40)
    assert _code(stranger.describe_applications)[0] == "InvalidClientTokenId"
    key = json.loads(beanpole.cli("keys", "create", "--json").stdout)
    forger, _ = _clients(beanpole, key["access_key_id"], "wrong" + key["secret_access_key"][5:])
    assert _code(forger.describe_applications)[0] == "SignatureDoesNotMatch"
    beanpole.cli("keys", "revoke", key["access_key_id"])
    revoked, _ = _clients(beanpole, key["access_key_id"], key["secret_access_key"])
    assert _code(revoked.describe_applications)[0] == "InvalidClientTokenId"
    # An action Beanpole has no counterpart to: 400 at once (a 5xx would be retried).
    started = time.monotonic()
    code, message = _code(eb.describe_account_attributes)
    assert code == "InvalidAction" and "DescribeAccountAttributes" in message
    assert time.monotonic() - started < 5


def test_applications_versions_tags_and_lifecycle(beanpole):
    eb, s3 = _clients(beanpole)
    eb.create_application(
        ApplicationName="shop",
        Description="the shop",
        Tags=[{"Key": "team", "Value": "web"}],
        ResourceLifecycleConfig={
            "ServiceRole": "arn:aws:iam::000000000000:role/eb",
            "VersionLifecycleConfig": {
                "MaxCountRule": {"Enabled": True, "MaxCount": 3, "DeleteSourceFromS3": True},
                "MaxAgeRule": {"Enabled": False, "MaxAgeInDays": 180},
            },
        },
    )
    assert _code(eb.create_application, ApplicationName="shop")[0] == "InvalidParameterValue"
    eb.create_application(ApplicationName="other")
    apps = eb.describe_applications(ApplicationNames=["shop"])["Applications"]
    assert [a["ApplicationName"] for a in apps] == ["shop"]
    shop = apps[0]
    assert shop["Description"] == "the shop"
    rules = shop["ResourceLifecycleConfig"]["VersionLifecycleConfig"]
    assert rules["MaxCountRule"] == {"Enabled": True, "MaxCount": 3, "DeleteSourceFromS3": True}
    assert rules["MaxAgeRule"]["Enabled"] is False
    arn = shop["ApplicationArn"]
    assert arn == "arn:aws:elasticbeanstalk:us-east-1:000000000000:application/shop"
    assert eb.list_tags_for_resource(ResourceArn=arn)["ResourceTags"] == [
        {"Key": "team", "Value": "web"}
    ]
    eb.update_tags_for_resource(
        ResourceArn=arn, TagsToAdd=[{"Key": "tier", "Value": "1"}], TagsToRemove=["team"]
    )
    assert eb.list_tags_for_resource(ResourceArn=arn)["ResourceTags"] == [
        {"Key": "tier", "Value": "1"}
    ]
    code, _ = _code(eb.list_tags_for_resource, ResourceArn=arn.replace("shop", "nope"))
    assert code == "ResourceNotFoundException"
    eb.update_application(ApplicationName="shop", Description="renamed")
    assert (
        eb.describe_applications(ApplicationNames=["shop"])["Applications"][0]["Description"]
        == "renamed"
    )

    s3.create_bucket(Bucket="bundles")
    _version(eb, s3, "shop", "v1")
    code, message = _code(
        eb.create_application_version,
        ApplicationName="shop",
        VersionLabel="v2",
        SourceBundle={"S3Bucket": "bundles", "S3Key": "missing.zip"},
    )
    assert code == "InvalidParameterValue" and "missing.zip" in message
    assert _code(_version, eb, s3, "shop", "v1")[0] == "InvalidParameterValue"  # label taken
    s3.put_object(Bucket="bundles", Key="bad.zip", Body=b"not a zip")
    code, message = _code(
        eb.create_application_version,
        ApplicationName="shop",
        VersionLabel="bad",
        SourceBundle={"S3Bucket": "bundles", "S3Key": "bad.zip"},
    )
    assert code == "InvalidParameterValue" and "zip" in message.lower()
    versions = eb.describe_application_versions(ApplicationName="shop", VersionLabels=["v1"])
    (v1,) = versions["ApplicationVersions"]
    assert v1["SourceBundle"] == {"S3Bucket": "bundles", "S3Key": "shop/v1.zip"}
    assert v1["ApplicationVersionArn"].endswith(":applicationversion/shop/v1")
    eb.update_application_version(ApplicationName="shop", VersionLabel="v1", Description="d")
    assert (
        eb.describe_application_versions(ApplicationName="shop", VersionLabels=["v1"])[
            "ApplicationVersions"
        ][0]["Description"]
        == "d"
    )
    for label in ("v2", "v3", "v4"):
        _version(eb, s3, "shop", label, **{"VERSION": label})
    # MaxCount 3: the oldest went
    labels = [
        v["VersionLabel"]
        for v in eb.describe_application_versions(ApplicationName="shop")["ApplicationVersions"]
    ]
    assert labels == ["v4", "v3", "v2"]
    eb.delete_application_version(ApplicationName="shop", VersionLabel="v2")
    assert (
        _code(eb.delete_application_version, ApplicationName="shop", VersionLabel="v2")[0]
        == "InvalidParameterValue"
    )
    eb.delete_application(ApplicationName="other")
    assert eb.describe_applications(ApplicationNames=["other"])["Applications"] == []
    code, message = _code(eb.delete_application, ApplicationName="other")
    assert code == "InvalidParameterValue" and "No Application named" in message


def test_an_environment_through_its_whole_life(beanpole):
    eb, s3 = _clients(beanpole)
    eb.create_application(ApplicationName="shop")
    storage = eb.create_storage_location()["S3Bucket"]
    assert storage == "elasticbeanstalk-us-east-1-000000000000"
    s3.head_bucket(Bucket=storage)
    _version(eb, s3, "shop", "v1", bucket=storage)
    _version(eb, s3, "shop", "v2", bucket=storage, VERSION="v2")
    assert eb.check_dns_availability(CNAMEPrefix="shop-live")["Available"] is True
    before = time.time() - 1
    created = eb.create_environment(
        ApplicationName="shop",
        EnvironmentName="shop-live",
        CNAMEPrefix="shop-live",
        SolutionStackName="64bit Amazon Linux 2023 v4.3.0 running Python 3.11",
        VersionLabel="v1",
        Tier={"Name": "WebServer", "Type": "Standard"},
        Description="live",
        Tags=[{"Key": "env", "Value": "prod"}],
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
            {
                "Namespace": "aws:elasticbeanstalk:command",
                "OptionName": "IgnoreHealthCheck",
                "Value": "False",
            },
            {
                "Namespace": "aws:elasticbeanstalk:application:environment",
                "OptionName": "GREETING",
                "Value": "hi",
            },
            {"Namespace": "aws:ec2:vpc", "OptionName": "VPCId", "Value": "vpc-0abc"},
            {
                "Namespace": "aws:autoscaling:launchconfiguration",
                "OptionName": "InstanceType",
                "Value": "t3.micro",
            },
        ],
    )
    env_id = created["EnvironmentId"]
    create_request = created["ResponseMetadata"]["RequestId"]
    assert created["CNAME"] == "shop-live.us-east-1.elasticbeanstalk.com"
    assert created["Status"] == "Launching"
    assert eb.check_dns_availability(CNAMEPrefix="shop-live")["Available"] is False
    _wait_status(eb, env_id, "Ready")

    # The app answers on EB's CNAME through the load balancer, and on Beanpole's own.
    conn = http.client.HTTPConnection("127.0.0.1", beanpole.lb_port, timeout=10)
    conn.request("GET", "/", headers={"Host": created["CNAME"]})
    answer = json.loads(conn.getresponse().read())
    assert answer["greeting"] == "hi"

    # Events: those of the create carry its request id, newest first, distinct times;
    # nothing at ERROR; the ignored EB options were reported once, as a warning.
    events = eb.describe_events(EnvironmentId=env_id, RequestId=create_request)["Events"]
    messages = [e["Message"] for e in events]
    assert messages[0] == "Successfully launched environment: shop-live"
    assert "createEnvironment is starting." in messages
    times = [e["EventDate"] for e in events]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    assert (
        eb.describe_events(EnvironmentId=env_id, Severity="ERROR", StartTime=before)["Events"] == []
    )
    warnings = eb.describe_events(EnvironmentId=env_id, Severity="WARN")["Events"]
    ignored = [e["Message"] for e in warnings if "no meaning" in e["Message"]]
    assert len(ignored) == 1 and "aws:ec2:vpc:VPCId" in ignored[0]
    later = eb.describe_events(EnvironmentName="shop-live", StartTime=times[0])["Events"]
    assert [e["EventDate"] for e in later] == [times[0]]

    # Settings are echoed as given; the tier is in the eb CLI's place.
    (config,) = eb.describe_configuration_settings(
        ApplicationName="shop", EnvironmentName="shop-live"
    )["ConfigurationSettings"]
    values = {(o["Namespace"], o["OptionName"]): o.get("Value") for o in config["OptionSettings"]}
    assert values[("aws:elasticbeanstalk:command", "IgnoreHealthCheck")] == "False"
    assert values[("aws:ec2:vpc", "VPCId")] == "vpc-0abc"
    assert values[("aws:autoscaling:asg", "MaxSize")] == "4"  # defaults too
    assert values[("aws:elasticbeanstalk:healthreporting:system", "SystemType")] == "enhanced"
    assert config["SolutionStackName"] == "64bit Amazon Linux 2023 v4.3.0 running Python 3.11"

    described = eb.describe_environments(ApplicationName="shop", EnvironmentNames=["shop-live"])
    (env,) = described["Environments"]
    assert env["VersionLabel"] == "v1" and env["Description"] == "live"
    assert env["Tier"]["Name"] == "WebServer"
    assert eb.list_tags_for_resource(ResourceArn=env["EnvironmentArn"])["ResourceTags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    resources = eb.describe_environment_resources(EnvironmentId=env_id)["EnvironmentResources"]
    assert len(resources["Instances"]) == 1 and resources["LoadBalancers"] == []

    health = wait_for(
        lambda: (
            (
                h := eb.describe_environment_health(
                    EnvironmentName="shop-live", AttributeNames=["All"]
                )
            )["InstancesHealth"]["Ok"]
            == 1
            and h
        ),
        60,
        "the instance Ok",
    )
    assert health["Status"] == "Ready" and health["Color"] == "Green"
    assert health["HealthStatus"] in ("Ok", "Info")  # Info: a deployment just completed
    instances = eb.describe_instances_health(EnvironmentName="shop-live", AttributeNames=["All"])
    assert [i["InstanceId"] for i in instances["InstanceHealthList"]] == [
        i["Id"] for i in resources["Instances"]
    ]

    # The version and a property in one update; a deleted version still running is refused.
    update = eb.update_environment(
        EnvironmentId=env_id,
        VersionLabel="v2",
        OptionSettings=[
            {
                "Namespace": "aws:elasticbeanstalk:application:environment",
                "OptionName": "GREETING",
                "Value": "hey",
            }
        ],
        OptionsToRemove=[{"Namespace": "aws:ec2:vpc", "OptionName": "VPCId"}],
    )
    assert update["Status"] == "Updating"
    code, message = _code(eb.update_environment, EnvironmentId=env_id, Description="x")
    assert code == "InvalidParameterValue"  # busy: one operation at a time
    _wait_status(eb, env_id, "Ready")
    done = eb.describe_events(
        EnvironmentId=env_id, RequestId=update["ResponseMetadata"]["RequestId"]
    )["Events"]
    assert "Environment update completed successfully." in [e["Message"] for e in done]
    conn = http.client.HTTPConnection("127.0.0.1", beanpole.lb_port, timeout=10)
    conn.request("GET", "/", headers={"Host": created["CNAME"]})
    answer = json.loads(conn.getresponse().read())
    assert (answer["version"], answer["greeting"]) == ("v2", "hey")
    (config,) = eb.describe_configuration_settings(
        ApplicationName="shop", EnvironmentName="shop-live"
    )["ConfigurationSettings"]
    assert ("aws:ec2:vpc", "VPCId") not in {
        (o["Namespace"], o["OptionName"]) for o in config["OptionSettings"]
    }
    code, message = _code(eb.delete_application_version, ApplicationName="shop", VersionLabel="v2")
    assert (code == "InvalidParameterValue" and "in use" in message.lower()) or "used" in message

    # Logs: requested, then retrieved as URLs served without a signature.
    info = eb.request_environment_info(EnvironmentName="shop-live", InfoType="tail")
    pulled = eb.describe_events(
        EnvironmentName="shop-live", RequestId=info["ResponseMetadata"]["RequestId"]
    )["Events"]
    assert pulled[0]["Message"] == "Pulled logs for environment instances."
    links = eb.retrieve_environment_info(EnvironmentName="shop-live", InfoType="tail")[
        "EnvironmentInfo"
    ]
    assert links and links[0]["Ec2InstanceId"].startswith("i-")
    with urllib.request.urlopen(links[0]["Message"], timeout=10) as page:
        assert "listening on" in page.read().decode()

    # A template from the environment, read back, changed, deleted.
    eb.create_configuration_template(
        ApplicationName="shop",
        TemplateName="base",
        EnvironmentId=env_id,
        Description="from live",
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "3"}
        ],
    )
    (template,) = eb.describe_configuration_settings(ApplicationName="shop", TemplateName="base")[
        "ConfigurationSettings"
    ]
    values = {(o["Namespace"], o["OptionName"]): o.get("Value") for o in template["OptionSettings"]}
    assert values[("aws:autoscaling:asg", "MaxSize")] == "3"
    assert values[("aws:elasticbeanstalk:application:environment", "GREETING")] == "hey"
    eb.update_configuration_template(ApplicationName="shop", TemplateName="base", Description="d2")
    assert (
        eb.describe_configuration_settings(ApplicationName="shop", TemplateName="base")[
            "ConfigurationSettings"
        ][0]["Description"]
        == "d2"
    )
    eb.delete_configuration_template(ApplicationName="shop", TemplateName="base")
    code, message = _code(
        eb.describe_configuration_settings, ApplicationName="shop", TemplateName="base"
    )
    assert code == "InvalidParameterValue" and "No Configuration Template named" in message

    checked = eb.validate_configuration_settings(
        ApplicationName="shop",
        EnvironmentName="shop-live",
        OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "many"}
        ],
    )["Messages"]
    assert checked[0]["Severity"] == "error" and "whole number" in checked[0]["Message"]
    opts = eb.describe_configuration_options(
        ApplicationName="shop", Options=[{"Namespace": "aws:autoscaling:asg"}]
    )["Options"]
    assert {o["Name"] for o in opts} == {"MinSize", "MaxSize", "Cooldown"}

    # Terminate: Terminating, then Terminated; gone from the default listing later.
    stop = eb.terminate_environment(EnvironmentId=env_id, TerminateResources=True)
    _wait_status(eb, env_id, "Terminated")
    wait_for(
        lambda: (
            "terminateEnvironment completed successfully."
            in [
                e["Message"]
                for e in eb.describe_events(
                    EnvironmentId=env_id, RequestId=stop["ResponseMetadata"]["RequestId"]
                )["Events"]
            ]
        ),
        30,
        "the terminate's completion event",
    )
    code, message = _code(eb.terminate_environment, EnvironmentId=env_id)
    assert code == "InvalidParameterValue" and "No Environment found" in message
    recent = eb.describe_environments(
        ApplicationName="shop", IncludeDeleted=True, IncludedDeletedBackTo=before, VersionLabel="v2"
    )["Environments"]
    assert [e["Status"] for e in recent] == ["Terminated"]


def test_platforms_in_ebs_names(beanpole):
    eb, _ = _clients(beanpole)
    stacks = eb.list_available_solution_stacks()["SolutionStacks"]
    assert "64bit Amazon Linux 2023 v4.3.0 running Python 3.11" in stacks
    platforms = eb.list_platform_versions()["PlatformSummaryList"]
    python = next(p for p in platforms if p["PlatformCategory"] == "Python")
    described = eb.describe_platform_version(PlatformArn=python["PlatformArn"])
    assert described["PlatformDescription"]["PlatformLifecycleState"] == "Recommended"
    branches = eb.list_platform_branches(
        Filters=[
            {"Attribute": "BranchName", "Operator": "=", "Values": [python["PlatformBranchName"]]}
        ]
    )["PlatformBranchSummaryList"]
    assert [b["BranchName"] for b in branches] == [python["PlatformBranchName"]]
    code, message = _code(
        eb.create_environment,
        ApplicationName="nope",
        EnvironmentName="php-env",
        SolutionStackName="64bit Amazon Linux 2023 v4.0.0 running PHP 8.2",
        VersionLabel="v1",
    )
    assert code == "InvalidParameterValue" and "PHP" in message


def test_swap_restart_and_abort(beanpole):
    eb, s3 = _clients(beanpole)
    eb.create_application(ApplicationName="shop")
    s3.create_bucket(Bucket="bundles")
    _version(eb, s3, "shop", "v1")
    ids = {}
    greeting = {
        "Namespace": "aws:elasticbeanstalk:application:environment",
        "OptionName": "GREETING",
        "Value": "Blue",
    }
    for name in ("shop-blue", "shop-green"):
        ids[name] = eb.create_environment(
            ApplicationName="shop",
            EnvironmentName=name,
            CNAMEPrefix=name,
            VersionLabel="v1",
            OptionSettings=[greeting] if name == "shop-blue" else [],
        )["EnvironmentId"]
    for env_id in ids.values():
        _wait_status(eb, env_id, "Ready")
    code, message = _code(eb.abort_environment_update, EnvironmentName="shop-blue")
    assert code == "InvalidParameterValue" and "no operation in progress" in message

    eb.swap_environment_cnames(
        SourceEnvironmentName="shop-blue", DestinationEnvironmentName="shop-green"
    )
    cnames = {
        e["EnvironmentName"]: e["CNAME"]
        for e in eb.describe_environments(ApplicationName="shop")["Environments"]
    }
    assert cnames == {
        "shop-blue": "shop-green.us-east-1.elasticbeanstalk.com",
        "shop-green": "shop-blue.us-east-1.elasticbeanstalk.com",
    }

    def instances():
        return {
            i["Id"]
            for i in eb.describe_environment_resources(EnvironmentName="shop-blue")[
                "EnvironmentResources"
            ]["Instances"]
        }

    before = instances()
    restart = eb.restart_app_server(EnvironmentName="shop-blue")
    assert _status(eb, ids["shop-blue"]) == "Updating"
    _wait_status(eb, ids["shop-blue"], "Ready")
    wait_for(lambda: instances() and not instances() & before, 60, "fresh instances")
    messages = [
        e["Message"]
        for e in eb.describe_events(RequestId=restart["ResponseMetadata"]["RequestId"])["Events"]
    ]
    assert "Environment update completed successfully." in messages

    # `eb clone`: a new environment from another's settings. The eb CLI's own service model
    # has TemplateSpecification, botocore's has not: add it to the form as eb sends it.
    def clone_of_blue(request, **_):
        request.data["TemplateSpecification.TemplateSource.EnvironmentName"] = "shop-blue"

    eb.meta.events.register("before-sign.elastic-beanstalk.CreateEnvironment", clone_of_blue)
    eb.create_environment(
        ApplicationName="shop", EnvironmentName="shop-copy", VersionLabel="v1", OptionSettings=[]
    )
    (copy,) = eb.describe_configuration_settings(
        ApplicationName="shop", EnvironmentName="shop-copy"
    )["ConfigurationSettings"]
    assert greeting in [
        {k: o[k] for k in ("Namespace", "OptionName", "Value")} for o in copy["OptionSettings"]
    ]
