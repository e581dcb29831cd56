"""Elastic Beanstalk's options that mean nothing on Beanpole: VPCs and subnets, instance
types, IAM roles, key pairs, CloudWatch, managed updates, classic load balancers...

Terraform files and saved EB configurations set them, so they are accepted, kept exactly as
given and echoed back (a second `terraform plan` must find nothing to change), and an event
says once that they were ignored. A misspelt option of a namespace Beanpole implements is
still refused: only EB's real option names are inert there.
"""

from __future__ import annotations

from beanpole.core import listener_rules

# Namespaces none of whose options Beanpole implements: any option name is kept.
_NAMESPACES = frozenset(
    {
        "aws:autoscaling:launchconfiguration",
        "aws:autoscaling:launchtemplate",
        "aws:ec2:instances",
        "aws:ec2:vpc",
        "aws:elasticbeanstalk:application",
        "aws:elasticbeanstalk:cloudwatch:logs",
        "aws:elasticbeanstalk:cloudwatch:logs:health",
        "aws:elasticbeanstalk:control",
        "aws:elasticbeanstalk:customoption",
        "aws:elasticbeanstalk:environment:proxy",
        "aws:elasticbeanstalk:hostmanager",
        "aws:elasticbeanstalk:managedactions",
        "aws:elasticbeanstalk:managedactions:platformupdate",
        "aws:elasticbeanstalk:monitoring",
        "aws:elasticbeanstalk:sns:topics",
        "aws:elasticbeanstalk:sqsd",
        "aws:elasticbeanstalk:xray",
        "aws:elasticbeanstalk:container:python:staticfiles",
        "aws:elb:healthcheck",
        "aws:elb:loadbalancer",
        "aws:elb:listener",
        "aws:elb:policies",
        "aws:elbv2:loadbalancer",
        "aws:rds:dbinstance",
    }
)
_DEFAULT_PROCESS = listener_rules.PROCESS_PREFIX + listener_rules.DEFAULT_PROCESS
_ROUTED_LISTENERS = frozenset(
    {listener_rules.HTTP_LISTENER, listener_rules.HTTP_LISTENER_80, listener_rules.HTTPS_LISTENER}
)
# Families of namespaces (a listener per port, a policy or process per name).
_PREFIXES = (
    "aws:elb:listener:",
    "aws:elb:policies:",
    "aws:elbv2:listener:",
    "aws:elasticbeanstalk:environment:process:",
)
# EB's options in namespaces Beanpole implements in part.
_OPTIONS = frozenset(
    {
        "aws:autoscaling:asg:Availability Zones",
        "aws:autoscaling:asg:Custom Availability Zones",
        "aws:autoscaling:asg:EnableCapacityRebalancing",
        "aws:autoscaling:updatepolicy:rollingupdate:PauseTime",
        "aws:autoscaling:updatepolicy:rollingupdate:Timeout",
        "aws:elasticbeanstalk:environment:LoadBalancerIsShared",
        "aws:elasticbeanstalk:environment:LoadBalancerType",
        "aws:elasticbeanstalk:environment:ServiceRole",
        "aws:elasticbeanstalk:environment:process:default:Port",
        "aws:elasticbeanstalk:environment:process:default:Protocol",
        "aws:elasticbeanstalk:environment:process:default:StickinessEnabled",
        "aws:elasticbeanstalk:environment:process:default:StickinessLBCookieDuration",
        "aws:elasticbeanstalk:environment:process:default:StickinessType",
        "aws:elasticbeanstalk:healthreporting:system:ConfigDocument",
        "aws:elasticbeanstalk:healthreporting:system:EnhancedHealthAuthEnabled",
        "aws:elasticbeanstalk:container:nodejs:NodeCommand",
        "aws:elasticbeanstalk:container:nodejs:NodeVersion",
        "aws:elasticbeanstalk:container:nodejs:GzipCompression",
        "aws:elasticbeanstalk:container:nodejs:ProxyServer",
        "aws:elasticbeanstalk:container:python:PythonPath",
        "aws:elbv2:listener:default:DefaultProcess",
        "aws:elbv2:listener:default:Protocol",
        "aws:elbv2:listener:default:SSLCertificateArns",
        "aws:elbv2:listener:default:SSLPolicy",
    }
)


def is_inert(key: str, known: frozenset[str] | None = None) -> bool:
    """Whether ``namespace:Option`` is one of EB's options Beanpole keeps without meaning.
    ``known``: the option keys Beanpole implements, which are never inert."""
    if known is not None and key in known:
        return False
    namespace, _, name = key.rpartition(":")
    if key in _OPTIONS or namespace in _NAMESPACES:
        return True
    if namespace.startswith(listener_rules.PROCESS_PREFIX):
        # a named process's port and health check route a listener rule's requests
        return namespace != _DEFAULT_PROCESS and name in listener_rules.PROCESS_INERT
    if name == "Rules" and namespace in _ROUTED_LISTENERS:
        return False  # these listeners' rules are routed (`core.listener_rules`)
    return any(
        namespace.startswith(prefix) and namespace != prefix + "default" for prefix in _PREFIXES
    )


def inert_keys(settings: dict[str, str], known: frozenset[str]) -> list[str]:
    return sorted(k for k in settings if is_inert(k, known))
