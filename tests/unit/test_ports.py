"""A Procfile web command written for EB's fixed port runs on the instance's $PORT (pure)."""

import pytest

from beanpole.core.platforms.ports import bind_to_port


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # EB's own Procfile example for Django
        (
            "gunicorn --bind :8000 --workers 3 --threads 2 mysite.wsgi:application",
            "gunicorn --bind :$PORT --workers 3 --threads 2 mysite.wsgi:application",
        ),
        ("gunicorn -b 0.0.0.0:8000 app:app", "gunicorn -b 0.0.0.0:$PORT app:app"),
        ("gunicorn --bind=127.0.0.1:5000 app:app", "gunicorn --bind=127.0.0.1:$PORT app:app"),
        (
            "uvicorn main:app --host 0.0.0.0 --port 8000",
            "uvicorn main:app --host 0.0.0.0 --port $PORT",
        ),
        ("python -m uvicorn main:app --port=8000", "python -m uvicorn main:app --port=$PORT"),
        ("exec daphne -b 0.0.0.0 -p 8000 mysite.asgi:application", None),  # see below
        ("hypercorn main:app --bind 0.0.0.0:8000", "hypercorn main:app --bind 0.0.0.0:$PORT"),
        (
            "waitress-serve --listen=0.0.0.0:8000 app:app",
            "waitress-serve --listen=0.0.0.0:$PORT app:app",
        ),
        (
            "gunicorn --bind :8000 --workers $WEB_CONCURRENCY app:app",  # variables stay
            "gunicorn --bind :$PORT --workers $WEB_CONCURRENCY app:app",
        ),
        ("flask run --host 0.0.0.0 --port 5000", "flask run --host 0.0.0.0 --port $PORT"),
        ("/app/venv/bin/gunicorn -b :8000 app:app", "/app/venv/bin/gunicorn -b :$PORT app:app"),
    ],
)
def test_a_known_servers_fixed_port_becomes_port(command, expected):
    result = bind_to_port(command)
    if expected is None:  # daphne: -b is the host, -p the port
        assert result.command == "exec daphne -b 0.0.0.0 -p $PORT mysite.asgi:application"
    else:
        assert result.command == expected
    assert "$PORT" in result.note and result.command in result.note


@pytest.mark.parametrize(
    "command",
    [
        "gunicorn --bind :$PORT app:app",  # already right
        "gunicorn app:app",  # gunicorn reads $PORT itself when no --bind is given
        "node server.js --port 3000",  # an unknown program's flags are its own
        "npm start",
        "cd src && gunicorn -b :8000 app:app",  # compound: left as written
        "gunicorn -b unix:/tmp/app.sock app:app",  # not a port
        "gunicorn --bind",  # a flag without a value
        "gunicorn 'unbalanced",  # not shell syntax at all
        # anything the shell would treat specially is left exactly as written
        "gunicorn -b :8000 app:app >> /tmp/log 2>&1",
        "gunicorn -b :8000 app:app; echo x",
        "gunicorn -b :8000 app:app &",
        "FOO=~/x gunicorn -b :8000 a:a",
        "gunicorn -b '$(id):8000' a:a",
        "gunicorn -b :8000 $(cat args)",
        "gunicorn -b :8000 `cat args`",
        'gunicorn -b ":8000" app:app',
        "waitress-serve --listen=*:8000 app:app",
    ],
)
def test_other_commands_are_left_alone(command):
    assert bind_to_port(command).command == command
    assert bind_to_port(command).note == ""


def test_the_rewritten_command_still_expands_port_in_the_shell():
    import subprocess

    command = bind_to_port("gunicorn --bind 0.0.0.0:8000 app:app").command
    echoed = subprocess.run(
        ["/bin/sh", "-c", "echo " + command],
        env={"PORT": "23001"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert echoed.strip() == "gunicorn --bind 0.0.0.0:23001 app:app"
