"""Test doubles that ship with Beanpole, for its own tests and for code built on it.

Each stands in for something slow or outside the process, and keeps the behaviour the
code under test relies on:

* `beanpole.testing.clock.ManualClock`: time moves only when the test says so (or, in
  autojump mode, as soon as every task is waiting on it), so a 60 s bake window costs
  nothing;
* `beanpole.testing.load_balancer.FakeLoadBalancer`: HAProxy's adapter surface held in
  memory, whose servers a test can mark DOWN.

This package may import any layer (it is never imported by one); see docs/architecture.md.
"""
