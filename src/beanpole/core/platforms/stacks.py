"""Elastic Beanstalk's solution stacks and platform ARNs, mapped to Beanpole's platforms.

EB names a platform two ways: a solution stack (``64bit Amazon Linux 2023 v4.3.0 running
Python 3.11``) and a platform ARN (``arn:aws:elasticbeanstalk:us-east-1::platform/Python
3.11 running on 64bit Amazon Linux 2023/4.3.0``). Beanpole lists one of each per platform
it runs, and reads any EB name by its language: the clients echo whichever name they sent,
so an environment keeps the name it was given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from beanpole.core.errors import InvalidInput

OS = "64bit Amazon Linux 2023"


@dataclass(frozen=True)
class Stack:
    platform: str  # Beanpole's: python, node, docker, procfile, static
    language: str  # EB's branch language ("Python 3.11")
    version: str  # the platform version ("4.3.0")
    category: str  # EB's PlatformCategory / programming language name

    @property
    def solution_stack(self) -> str:
        return f"{OS} v{self.version} running {self.language}"

    @property
    def branch(self) -> str:
        return f"{self.language} running on {OS}"

    def arn(self, region: str) -> str:
        return f"arn:aws:elasticbeanstalk:{region}::platform/{self.branch}/{self.version}"


STACKS: tuple[Stack, ...] = (
    Stack("python", "Python 3.11", "4.3.0", "Python"),
    Stack("python", "Python 3.12", "4.3.0", "Python"),
    Stack("node", "Node.js 20", "6.2.0", "Node.js"),
    Stack("node", "Node.js 22", "6.2.0", "Node.js"),
    Stack("docker", "Docker", "4.3.0", "Docker"),
    Stack("procfile", "Corretto 21", "4.3.0", "Java"),
    Stack("procfile", "Go 1", "4.3.0", "Go"),
)

# The language named in a stack or ARN → Beanpole's platform.
_FAMILIES = (
    (re.compile(r"\bPython\b", re.I), "python"),
    (re.compile(r"\bNode\.?js\b", re.I), "node"),
    (re.compile(r"\bDocker\b|\bECS\b", re.I), "docker"),
    (re.compile(r"\bCorretto\b|\bJava\b|\bGo\b", re.I), "procfile"),
)


def platform_of(name: str) -> str:
    """Beanpole's platform for an EB solution stack name or platform ARN; a platform
    Beanpole does not run (PHP, Ruby, Tomcat, .NET) is refused with the ones it does."""
    for pattern, platform in _FAMILIES:
        if pattern.search(name):
            return platform
    runs = ", ".join(sorted({s.solution_stack for s in STACKS}))
    raise InvalidInput(
        f"No Platform named {name!r} on Beanpole: it runs Python, Node.js, Docker, and Java "
        f"or Go with a Procfile. Use one of: {runs}."
    )


def stack_for(platform: str | None) -> Stack:
    """The stack Beanpole reports for a platform (None: detected per version; Python's)."""
    for stack in STACKS:
        if stack.platform == platform:
            return stack
    return STACKS[0]


def by_arn(arn: str) -> Stack | None:
    for stack in STACKS:
        if arn.endswith(f"platform/{stack.branch}/{stack.version}"):
            return stack
    return None
