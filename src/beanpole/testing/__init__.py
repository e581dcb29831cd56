"""Test doubles that ship with Beanpole, for its own tests and for code built on it.

Each stands in for something slow or outside the process, and keeps the behaviour the
code under test relies on:

* `beanpole.testing.runtime.FakeRuntime`: an in-memory `beanpole.ports.Runtime` that passes
  the same contract suite (``tests/contract/``) as the real backends;
* `beanpole.testing.load_balancer.FakeLoadBalancer`: HAProxy's adapter surface held in
  memory, whose servers a test can mark DOWN;
* `beanpole.testing.clock.ManualClock`: time moves only when the test says so (or, in
  autojump mode, as soon as every task is waiting on it), so a 60 s bake window costs
  nothing.

This package may import any layer (it is never imported by one); see docs/architecture.md.
"""

from beanpole.testing.load_balancer import FakeLoadBalancer
from beanpole.testing.runtime import FakeRuntime

__all__ = ["FakeLoadBalancer", "FakeRuntime"]
