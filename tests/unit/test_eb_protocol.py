"""EB's query protocol: the flattened form read back, the XML written, settings echoed."""

import xml.etree.ElementTree as ET

import pytest

from beanpole.core.platforms import stacks
from beanpole.core.settings import validate
from beanpole.core.settings.inert import is_inert
from beanpole.server.eb.actions import options
from beanpole.server.eb.protocol import (
    NAMESPACE,
    EBError,
    Params,
    Timestamp,
    format_time,
    parse_time,
    render,
    render_error,
)

NS = {"eb": NAMESPACE}


def test_lists_and_structs_are_read_back_in_member_order():
    p = Params(
        {
            "EnvironmentIds.member.2": "e-2",
            "EnvironmentIds.member.1": "e-1",
            "OptionSettings.member.2.Namespace": "aws:autoscaling:asg",
            "OptionSettings.member.2.OptionName": "MaxSize",
            "OptionSettings.member.2.Value": "4",
            "OptionSettings.member.1.Namespace": "aws:autoscaling:scheduledaction",
            "OptionSettings.member.1.ResourceName": "Nightly",
            "OptionSettings.member.1.OptionName": "MinSize",
            "OptionSettings.member.1.Value": "0",
            "Tier.Name": "WebServer",
        }
    )
    assert p.strings("EnvironmentIds") == ["e-1", "e-2"]
    assert options.given_settings(p) == {
        "aws:autoscaling:scheduledaction:Nightly:MinSize": "0",
        "aws:autoscaling:asg:MaxSize": "4",
    }
    assert p.struct("Tier") == {"Name": "WebServer"}


def test_an_empty_list_marker_is_an_empty_list():
    p = Params(
        {
            "OptionSettings": "",
            "OptionsToRemove.member.1.Namespace": "aws:ec2:vpc",
            "OptionsToRemove.member.1.OptionName": "VPCId",
        }
    )
    assert options.given_settings(p) == {}
    assert options.removals(p) == ["aws:ec2:vpc:VPCId"]


def test_bad_scalars_are_refused_with_the_parameter_named():
    p = Params({"IncludeDeleted": "maybe", "MaxRecords": "x", "StartTime": "yesterday"})
    for read, name in (
        (p.flag, "IncludeDeleted"),
        (p.number, "MaxRecords"),
        (p.moment, "StartTime"),
    ):
        with pytest.raises(EBError) as caught:
            read(name)
        assert caught.value.code == "InvalidParameterValue"
        assert name in caught.value.message
    with pytest.raises(EBError) as missing:
        Params({}).required("ApplicationName")
    assert missing.value.code == "MissingParameter"


def test_times_with_any_fraction_parse_to_the_same_instant():
    go = parse_time("StartTime", "2026-12-02T04:11:57.76Z")
    boto = parse_time("StartTime", "2026-12-02T04:11:57.760000Z")
    assert go == boto
    assert format_time(go) == "2026-12-02T04:11:57.760Z"


def test_a_result_renders_in_ebs_namespace_with_members_and_the_request_id():
    body = render(
        "DescribeEvents",
        {
            "Events": [
                {"Message": "a < b & c", "EventDate": Timestamp(0.5), "Severity": "INFO"},
                {"Message": "two", "ApplicationName": None},
            ],
            "Flag": True,
        },
        "req-1",
    )
    root = ET.fromstring(body)
    assert root.tag == f"{{{NAMESPACE}}}DescribeEventsResponse"
    events = root.findall("eb:DescribeEventsResult/eb:Events/eb:member", NS)
    assert [e.findtext("eb:Message", namespaces=NS) for e in events] == ["a < b & c", "two"]
    assert events[0].findtext("eb:EventDate", namespaces=NS) == "1970-01-01T00:00:00.500Z"
    assert events[1].find("eb:ApplicationName", NS) is None  # None is left out
    assert root.findtext("eb:DescribeEventsResult/eb:Flag", namespaces=NS) == "true"
    assert root.findtext("eb:ResponseMetadata/eb:RequestId", namespaces=NS) == "req-1"


def test_an_error_has_ebs_shape():
    root = ET.fromstring(render_error(EBError("InvalidParameterValue", "No <thing>"), "r"))
    assert root.findtext("eb:Error/eb:Code", namespaces=NS) == "InvalidParameterValue"
    assert root.findtext("eb:Error/eb:Type", namespaces=NS) == "Sender"
    assert root.findtext("eb:Error/eb:Message", namespaces=NS) == "No <thing>"
    assert root.findtext("eb:RequestId", namespaces=NS) == "r"


def test_settings_are_echoed_as_given_while_they_are_in_force():
    given = {
        "aws:elasticbeanstalk:command:IgnoreHealthCheck": "True",
        "aws:autoscaling:asg:MinSize": "02",
        "aws:ec2:vpc:VPCId": "vpc-123",
    }
    direct = validate(given)
    assert direct["aws:elasticbeanstalk:command:IgnoreHealthCheck"] == "true"
    resolved = {"aws:autoscaling:asg:MaxSize": "4", **direct}
    echoed = {
        f"{o['Namespace']}:{o['OptionName']}": o["Value"]
        for o in options.echo(resolved, direct, given)
    }
    assert echoed["aws:elasticbeanstalk:command:IgnoreHealthCheck"] == "True"
    assert echoed["aws:autoscaling:asg:MinSize"] == "02"
    assert echoed["aws:ec2:vpc:VPCId"] == "vpc-123"
    assert echoed["aws:autoscaling:asg:MaxSize"] == "4"
    # changed since by another face: the value in force, not the stale spelling
    direct["aws:autoscaling:asg:MinSize"] = "3"
    again = options.echo({**resolved, **direct}, direct, given)
    assert {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "3"} in again


def test_a_scheduled_action_is_echoed_with_its_resource_name():
    echoed = options.echo({"aws:autoscaling:scheduledaction:Nightly:MinSize": "0"}, {}, {})
    assert echoed == [
        {
            "ResourceName": "Nightly",
            "Namespace": "aws:autoscaling:scheduledaction",
            "OptionName": "MinSize",
            "Value": "0",
        }
    ]


def test_ebs_meaningless_options_are_kept_but_typos_in_beanpoles_are_refused():
    assert is_inert("aws:ec2:vpc:Subnets")
    assert is_inert("aws:autoscaling:launchconfiguration:InstanceType")
    assert is_inert("aws:elbv2:listener:8080:Protocol")  # 443 and default: implemented
    assert is_inert("aws:elasticbeanstalk:environment:process:api:StickinessType")
    assert not is_inert("aws:elasticbeanstalk:environment:process:api:Port")  # a rule's
    assert not is_inert("aws:elasticbeanstalk:environment:process:default:HealthCheckPth")
    assert not is_inert("aws:autoscaling:asg:MinSzie")
    with pytest.raises(Exception, match="MinSzie"):
        validate({"aws:autoscaling:asg:MinSzie": "1"})


def test_solution_stacks_map_to_platforms_and_others_are_refused_with_the_list():
    assert stacks.platform_of("64bit Amazon Linux 2023 v4.3.0 running Python 3.11") == "python"
    assert stacks.platform_of("64bit Amazon Linux 2023 v6.2.0 running Node.js 20") == "node"
    python = stacks.stack_for("python")
    assert stacks.by_arn(python.arn("eu-west-1")) == python
    assert stacks.platform_of(python.arn("us-east-1")) == "python"
    with pytest.raises(Exception, match=r"running Python 3\.11"):
        stacks.platform_of("64bit Amazon Linux 2023 v4.0.0 running PHP 8.2")
