"""EB's actions, one module per kind of resource; each action takes the request's
`Params` and returns its result element as plain data (`protocol.render` writes it).
`server/eb/catalog.py` lists them by name."""
