"""Test doubles Beanpole ships, so tests of Beanpole (and of code built on it) need no process.

`FakeRuntime` is an in-memory `beanpole.ports.Runtime` that passes the same contract suite
(``tests/contract/``) as the real backends; `FakeLoadBalancer` stands in for HAProxy.
"""

from beanpole.testing.lb import FakeLoadBalancer
from beanpole.testing.runtime import FakeRuntime

__all__ = ["FakeLoadBalancer", "FakeRuntime"]
