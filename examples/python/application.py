"""A Flask app laid out the way Elastic Beanstalk expects: `application` in application.py."""

import os
import socket

from flask import Flask, jsonify

application = Flask(__name__)


@application.route("/")
def index():
    return (
        "<!doctype html><title>Beanpole demo</title>"
        "<h1>Hello from Beanpole</h1>"
        f"<p>Served by instance {os.environ.get('BEANPOLE_INSTANCE_ID', '?')} "
        f"(pid {os.getpid()}) on {socket.gethostname()}.</p>"
    )


@application.route("/whoami")
def whoami():
    return jsonify(
        instance=os.environ.get("BEANPOLE_INSTANCE_ID"),
        pid=os.getpid(),
        greeting=os.environ.get("GREETING", "hello"),
    )


if __name__ == "__main__":
    application.run(port=int(os.environ.get("PORT", "8000")))
