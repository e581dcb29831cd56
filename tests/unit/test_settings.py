"""Option settings: validation names the problem and the fix; resolution layers over defaults."""

import pytest

from beanpole.core.errors import InvalidInput
from beanpole.core.settings import ENV_NAMESPACE, merge_changes, parse_assignment, resolve, validate

PY = "aws:elasticbeanstalk:container:python"


def test_defaults_follow_elastic_beanstalk():
    s = resolve()
    assert s.get(PY, "WSGIPath") == "application"
    assert s.int(PY, "NumProcesses") == 1
    assert s.int(PY, "NumThreads") == 15
    proc = "aws:elasticbeanstalk:environment:process:default"
    assert s.get(proc, "HealthCheckPath") == "/"
    assert s.int(proc, "HealthCheckInterval") == 15
    assert s.int(proc, "HealthyThresholdCount") == 3
    assert s.int(proc, "UnhealthyThresholdCount") == 5
    assert s.int("aws:elasticbeanstalk:command", "Timeout") == 600


def test_later_layers_win():
    s = resolve({f"{PY}:NumThreads": "4"}, {f"{PY}:NumThreads": "8"})
    assert s.int(PY, "NumThreads") == 8


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        (f"{PY}:NumThreads", "lots", "not a whole number"),
        (f"{PY}:NumThreads", "0", "between 1 and 256"),
        (f"{PY}:Threads", "2", "Known options: NumProcesses, NumThreads, WSGIPath"),
        ("aws:nope:thing:X", "1", "Unknown option namespace"),
        ("aws:elasticbeanstalk:command:DeploymentPolicy", "Yolo", "choose one of AllAtOnce"),
        ("aws:elasticbeanstalk:environment:process:default:MatcherHTTPCode", "2xx", "not valid"),
        (
            "aws:elasticbeanstalk:environment:process:default:HealthCheckPath",
            "health",
            "starting with '/'",
        ),
        (f"{ENV_NAMESPACE}:PORT", "1", "set by Beanpole"),
        (f"{ENV_NAMESPACE}:1BAD", "1", "not valid"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(key, value, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        validate({key: value})


def test_matcher_accepts_lists_and_ranges():
    key = "aws:elasticbeanstalk:environment:process:default:MatcherHTTPCode"
    assert validate({key: "200,302"})[key] == "200,302"
    assert validate({key: "200-399"})[key] == "200-399"


def test_removing_a_direct_setting_restores_the_default():
    current = validate({f"{PY}:NumThreads": "4", f"{ENV_NAMESPACE}:A": "1"})
    merged = merge_changes(current, {f"{ENV_NAMESPACE}:B": "2"}, [f"{PY}:NumThreads"])
    assert resolve(merged).int(PY, "NumThreads") == 15
    assert resolve(merged).env == {"A": "1", "B": "2"}


def test_parse_assignment():
    assert parse_assignment("aws:autoscaling:asg:MinSize=2") == ("aws:autoscaling:asg:MinSize", "2")
    assert parse_assignment("a:b=x=y") == ("a:b", "x=y")
    with pytest.raises(InvalidInput, match="NAMESPACE:OPTION=VALUE"):
        parse_assignment("MinSize")


def test_release_key_changes_only_with_what_instances_see():
    base = resolve({})
    assert base.release_key("d1") != base.release_key("d2")
    env = resolve({f"{ENV_NAMESPACE}:A": "1"})
    assert env.release_key("d1") != base.release_key("d1")
    health = resolve({"aws:elasticbeanstalk:environment:process:default:HealthCheckPath": "/h"})
    assert health.release_key("d1") == base.release_key("d1")
    scale = resolve({"aws:autoscaling:asg:MinSize": "3"})
    assert scale.release_key("d1") == base.release_key("d1")


def test_precedence_direct_over_ebextensions_over_defaults():
    """EB's order (saved configurations, between the two, do not exist yet); removing a direct
    setting lets the .ebextensions value apply again."""
    from beanpole.core.model import Environment, EnvStatus, Health

    ebextensions = {f"{PY}:NumThreads": "4", f"{ENV_NAMESPACE}:GREETING": "from-file"}
    direct = {f"{ENV_NAMESPACE}:GREETING": "direct"}
    env = Environment(
        "shop",
        "app",
        "shop",
        EnvStatus.READY,
        Health.GREEN,
        "v1",
        direct,
        1,
        0.0,
        0.0,
        version_settings=ebextensions,
    )
    resolved = resolve(*env.layers())
    assert resolved.env == {"GREETING": "direct"}
    assert resolved.int(PY, "NumThreads") == 4
    assert resolved.int(PY, "NumProcesses") == 1  # the default
    removed = merge_changes(direct, {}, [f"{ENV_NAMESPACE}:GREETING"])
    assert resolve(*env.layers(direct=removed)).env == {"GREETING": "from-file"}
    # a deployment of another version takes that version's layer, not the running one's
    assert resolve(*env.layers({})).int(PY, "NumThreads") == 15
