"""The deploy-speed benchmark's app: Flask in Elastic Beanstalk's layout.

`application` in application.py, dependencies in requirements.txt (so Beanpole runs it with
gunicorn in a uv virtualenv). The benchmark rewrites VERSION for each deploy: a code-only
change, whose dependencies are already cached.
"""

import os

from flask import Flask

VERSION = "v0"

application = Flask(__name__)


@application.route("/")
def index():
    return {"version": VERSION, "instance": os.environ.get("BEANPOLE_INSTANCE_ID")}
