"""Elastic Beanstalk's own API, a second face beside `server/rest/`: the query protocol
(`protocol`, `actions`), the S3 subset for bundles (`s3`), SigV4 (`auth`), one port
(`app`). It translates requests into service calls and the core's errors into EB's shapes."""
