"""The server process: the composition root (`main`) and the faces that serve the services
(`rest/` today; `eb/` for Elastic Beanstalk's API and `console/` will sit beside it)."""
