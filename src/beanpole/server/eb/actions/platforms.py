"""Platforms and solution stacks in EB's names (`core.platforms.stacks`), and the S3
bucket the eb CLI uploads bundles to."""

from __future__ import annotations

from typing import Any

from beanpole.core.platforms import stacks
from beanpole.server.eb.actions.base import Action, Result
from beanpole.server.eb.context import ACCOUNT, EB
from beanpole.server.eb.protocol import Params, Timestamp, invalid

_RELEASED = 1_764_547_200.0  # 2025-12-01: when Beanpole's names for these versions were set


async def list_available_solution_stacks(eb: EB, p: Params) -> Result:
    return {
        "SolutionStacks": [s.solution_stack for s in stacks.STACKS],
        "SolutionStackDetails": [
            {"SolutionStackName": s.solution_stack, "PermittedFileTypes": ["zip"]}
            for s in stacks.STACKS
        ],
    }


async def describe_platform_version(eb: EB, p: Params) -> Result:
    arn = p.required("PlatformArn")
    stack = stacks.by_arn(arn)
    if stack is None:
        raise invalid(f"No Platform named '{arn}' found. ListPlatformVersions lists them.")
    return {"PlatformDescription": _describe(eb, stack)}


async def list_platform_versions(eb: EB, p: Params) -> Result:
    return {"PlatformSummaryList": [_summary(eb, s) for s in _filtered(p)]}


async def list_platform_branches(eb: EB, p: Params) -> Result:
    seen: dict[str, stacks.Stack] = {}
    for stack in _filtered(p):
        seen.setdefault(stack.branch, stack)
    return {
        "PlatformBranchSummaryList": [
            {
                "PlatformName": s.language,
                "BranchName": s.branch,
                "LifecycleState": "Supported",
                "BranchOrder": index,
                "SupportedTierList": ["WebServer/Standard"],
            }
            for index, s in enumerate(seen.values())
        ]
    }


async def create_storage_location(eb: EB, p: Params) -> Result:
    bucket = f"elasticbeanstalk-{eb.region}-{ACCOUNT}"
    await eb.buckets.ensure_bucket(bucket)
    return {"S3Bucket": bucket}


def _filtered(p: Params) -> list[stacks.Stack]:
    """Filters of ListPlatformVersions/ListPlatformBranches on the name or branch (=,
    contains, begins_with); others are ignored, which only widens the answer."""
    found = list(stacks.STACKS)
    for f in p.structs("Filters"):
        attribute = f.get("Type") or f.get("Attribute") or ""
        operator = f.get("Operator", "=")
        values = [v for k, v in sorted(f.items()) if k.startswith("Values.member.")]
        if not values:
            continue

        def field(s: stacks.Stack, name: str = attribute) -> str | None:
            return {
                "PlatformName": s.branch,
                "BranchName": s.branch,
                "PlatformBranchName": s.branch,
                "LanguageName": s.category,
                "ProgrammingLanguageName": s.category,
            }.get(name)

        def keep(s: stacks.Stack, op: str = operator, vals: list[str] = values) -> bool:
            value = field(s)
            if value is None:
                return True
            if op in ("=", "=="):
                return value in vals
            if op == "!=":
                return value not in vals
            if op == "contains":
                return any(v in value for v in vals)
            if op == "begins_with":
                return any(value.startswith(v) for v in vals)
            return True

        found = [s for s in found if keep(s)]
    return found


def _summary(eb: EB, s: stacks.Stack) -> dict[str, Any]:
    return {
        "PlatformArn": s.arn(eb.region),
        "PlatformOwner": "AWSElasticBeanstalk",
        "PlatformStatus": "Ready",
        "PlatformCategory": s.category,
        "OperatingSystemName": "Amazon Linux",
        "OperatingSystemVersion": "2023",
        "SupportedTierList": ["WebServer/Standard"],
        "SupportedAddonList": ["Log/S3"],
        "PlatformLifecycleState": "Recommended",
        "PlatformVersion": s.version,
        "PlatformBranchName": s.branch,
        "PlatformBranchLifecycleState": "Supported",
    }


def _describe(eb: EB, s: stacks.Stack) -> dict[str, Any]:
    return {
        **_summary(eb, s),
        "PlatformName": s.branch,
        "SolutionStackName": s.solution_stack,
        "DateCreated": Timestamp(_RELEASED),
        "DateUpdated": Timestamp(_RELEASED),
        "Description": f"{s.language} on Beanpole ({s.platform} platform)",
        "ProgrammingLanguages": [{"Name": s.category, "Version": s.language.split()[-1]}],
        "Frameworks": [],
        "CustomAmiList": [],
    }


ACTIONS: dict[str, Action] = {
    "ListAvailableSolutionStacks": list_available_solution_stacks,
    "DescribePlatformVersion": describe_platform_version,
    "ListPlatformVersions": list_platform_versions,
    "ListPlatformBranches": list_platform_branches,
    "CreateStorageLocation": create_storage_location,
}
