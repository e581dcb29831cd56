"""Adapters: the outside world behind the core's vocabulary.

`runtime/` runs instances (supervisord today; Docker and Swarm later, each a backend of the
same protocol), `lb/` drives HAProxy and reads its request stream, `store/` is SQLite,
`build` and `bundles` make artifacts from source bundles, `logs` reads and rotates log files.
Adapters import the core, never a service or a face.
"""
