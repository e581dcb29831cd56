"""Beanpole: a self-hosted Elastic Beanstalk."""

__version__ = "0.1.0"
