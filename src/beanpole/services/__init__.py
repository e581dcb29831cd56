"""Services: the use cases and the loops, written against the core and the adapters' ports.

Operations (create, deploy, configure, terminate), the deployment runner, the fleet (an
instance's life), the reconciler and the health monitor. Every face (REST today, Elastic
Beanstalk's API and the console later) calls these; none repeats them.
"""
