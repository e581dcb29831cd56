"""The API contract: the typed inputs and views every face and the client share.

The services take these inputs and answer these views; the REST face declares them as its
request and response models (so the OpenAPI document has their schemas); `beanpole.client`
parses answers into the same classes. The package imports only the core and pydantic, so the
client (and through it the CLI) never imports server code, and a second face (Elastic
Beanstalk's query API, the console) renders the same views in its own shape.
"""
