"""Start failures name the fix (issue 8, part 6): each known cause gets its hint, every failed
instance is named, and several with one cause are said once with their ids."""

from beanpole.core.hints import AppFacts, StartFailure, classify, describe

GUNICORN_NO_MODULE = (
    "[2026-01-01 10:00:00 +0000] [101] [INFO] Booting worker with pid: 102",
    "[2026-01-01 10:00:00 +0000] [102] [ERROR] Exception in worker process",
    "Traceback (most recent call last):",
    '  File "/venv/gunicorn/util.py", line 420, in import_app',
    "    mod = importlib.import_module(module)",
    "ModuleNotFoundError: No module named 'application'",
    "No module named 'application'",
    "[2026-01-01 10:00:01 +0000] [102] [INFO] Worker exiting (pid: 102)",
    "[2026-01-01 10:00:01 +0000] [101] [ERROR] Shutting down: Master",
    "[2026-01-01 10:00:01 +0000] [101] [ERROR] Reason: Worker failed to boot.",
)
NODE_EADDRINUSE = (
    "node:events:502",
    "      throw er; // Unhandled 'error' event",
    "Error: listen EADDRINUSE: address already in use :::8080",
    "    at Server.setupListenHandle [as _listen2] (node:net:1908:16)",
    "  code: 'EADDRINUSE',",
    "  port: 8080",
    "}",
    "Node.js v20.20.2",
)
DJANGO = AppFacts(
    platform="python",
    wsgi_module="application",
    wsgi_files=("myvoting/wsgi.py",),
    requirements=("requirements.txt",),
)


def crash(instance_id: str, output: tuple[str, ...], status: int = 3, port: int = 23001):
    return StartFailure(instance_id, f"web exited with status {status}", output, port)


def test_a_missing_wsgi_module_names_the_wsgipath_setting_and_the_value_to_paste() -> None:
    message = describe([crash("i-1", GUNICORN_NO_MODULE)], "v1", DJANGO)
    assert message.startswith(
        "Instance i-1 of version v1 failed: web exited with status 3: "
        "\"No module named 'application'\". Beanpole runs gunicorn on the WSGIPath setting"
    )
    assert (
        "set aws:elasticbeanstalk:container:python WSGIPath to myvoting.wsgi:application "
        "(for myvoting/wsgi.py)" in message
    )
    # the cause first, then the last lines of output, in the order written
    assert message.index("WSGIPath") < message.index("Last output: ")
    assert message.endswith("Reason: Worker failed to boot.")


def test_several_wsgi_files_are_all_offered_and_none_gets_an_example() -> None:
    facts = AppFacts("python", "application", ("a/wsgi.py", "b/c/wsgi.py"))
    message = describe([crash("i-1", GUNICORN_NO_MODULE)], "v1", facts)
    assert "a.wsgi:application (for a/wsgi.py) or b.c.wsgi:application (for b/c/wsgi.py)" in (
        message
    )
    none = describe([crash("i-1", GUNICORN_NO_MODULE)], "v1", AppFacts("python", "application"))
    assert "for example app:app" in none


def test_a_missing_dependency_points_at_requirements_txt() -> None:
    output = ("ModuleNotFoundError: No module named 'flask'",)
    message = describe([crash("i-1", output)], "v1", DJANGO)
    assert "The app imports 'flask', which is not installed" in message
    assert "to requirements.txt" in message


def test_failed_to_find_attribute_names_the_callable_form() -> None:
    output = ("Failed to find attribute 'application' in 'app'.",)
    message = describe([crash("i-1", output, status=4)], "v1", DJANGO)
    assert "The WSGI module has no 'application'" in message
    assert "WSGIPath (for example app:app" in message


def test_instances_with_one_cause_are_said_once_with_their_ids() -> None:
    message = describe(
        [crash("i-1", GUNICORN_NO_MODULE), crash("i-2", GUNICORN_NO_MODULE, port=23002)],
        "v1",
        DJANGO,
    )
    assert message.startswith("Instances i-1, i-2 of version v1 failed: web exited with status 3")
    assert message.count("WSGIPath to") == 1
    assert "Last output of i-1: " in message
    assert "more)" not in message


def test_different_causes_are_each_said_and_numbered() -> None:
    timeout = StartFailure("i-3", "did not listen on PORT 23003 within 60 s", (), 23003)
    message = describe([crash("i-1", GUNICORN_NO_MODULE), timeout], "v1", DJANGO)
    assert message.startswith("2 different causes: (1) Instance i-1 of version v1 failed")
    assert "(2) Instance i-3 of version v1 failed: did not listen on PORT 23003 within 60 s." in (
        message
    )


def test_eaddrinuse_names_the_port_tried_and_the_port_given() -> None:
    message = describe([crash("i-1", NODE_EADDRINUSE, status=1)], "v1", AppFacts(platform="nodejs"))
    assert '"Error: listen EADDRINUSE: address already in use :::8080"' in message
    assert "The app listens on 8080 but PORT is 23001: listen on process.env.PORT." in message
    two = describe(
        [
            crash("i-1", NODE_EADDRINUSE, status=1),
            crash("i-2", NODE_EADDRINUSE, status=1, port=23002),
        ],
        "v1",
        AppFacts(platform="nodejs"),
    )
    assert "Instances i-1, i-2 " in two
    assert "The app listens on 8080 but PORT is 23001 and 23002" in two


def test_python_and_gunicorn_address_errors() -> None:
    python = ("OSError: [Errno 98] Address already in use",)
    message = describe([crash("i-1", python, status=1)], "v1", AppFacts(platform="python"))
    assert "The app listens on a fixed port, already taken, but PORT is 23001" in message
    assert "listen on $PORT (os.environ['PORT'])" in message
    gunicorn = (
        "[ERROR] Connection in use: ('0.0.0.0', 8000)",
        "[ERROR] connection to ('0.0.0.0', 8000) failed: [Errno 98] Address already in use",
        "[ERROR] Can't connect to ('0.0.0.0', 8000)",
    )
    assert classify(crash("i-1", gunicorn)).detail == "8000"


def test_the_instance_port_taken_by_someone_else_is_not_blamed_on_the_app() -> None:
    output = ("Error: listen EADDRINUSE: address already in use 127.0.0.1:23001",)
    message = describe([crash("i-1", output, status=1)], "v1", AppFacts(platform="nodejs"))
    assert "PORT 23001 is held by another program on this host" in message


def test_gunicorn_not_found_says_where_requirements_txt_is() -> None:
    output = ("/bin/sh: 1: exec: gunicorn: not found",)
    facts = AppFacts(platform="procfile", requirements=("backend/requirements.txt",))
    message = describe([crash("i-1", output, status=127)], "v1", facts)
    assert "The web command runs gunicorn, which is not installed." in message
    assert "from a requirements.txt at the bundle's root, and found none." in message
    assert "It found backend/requirements.txt: move it to the root, or install it from an " in (
        message
    )
    assert "container_commands entry (pip install -r backend/requirements.txt)" in message
    listed = AppFacts(platform="python", requirements=("requirements.txt",))
    assert "requirements.txt at the bundle's root does not install it" in describe(
        [crash("i-1", output, status=127)], "v1", listed
    )


def test_any_other_command_not_found_is_named() -> None:
    dash = ("/bin/sh: 1: exec: frobnicate: not found",)
    bash = ("bash: line 1: frobnicate: command not found",)
    for output in (dash, bash):
        message = describe([crash("i-1", output, status=127)], "v1", AppFacts())
        assert "The command 'frobnicate' was not found" in message
    assert "install Node.js" in describe(
        [crash("i-1", ("sh: 1: exec: npm: not found",), status=127)], "v1", AppFacts()
    )


def test_an_unknown_cause_still_shows_the_reason_then_the_output() -> None:
    message = describe([crash("i-1", ("boom: no DATABASE_URL",))], "v1", AppFacts())
    assert message == (
        "Instance i-1 of version v1 failed: web exited with status 3. "
        "Last output: boom: no DATABASE_URL"
    )


def test_a_reason_that_is_a_sentence_is_not_given_a_second_full_stop() -> None:
    reason = "GET / answered 404 Not Found 5 times (Host: a.localhost): … (or MatcherHTTPCode)."
    message = describe([StartFailure("i-1", reason, (), 23001)], "v1", AppFacts())
    assert message == f"Instance i-1 of version v1 failed: {reason}"


def test_one_known_cause_is_one_group_whatever_the_runtime_saw_of_the_exit() -> None:
    seen_dead = crash("i-1", GUNICORN_NO_MODULE)
    restarted = StartFailure("i-2", "web exited, and was started again", GUNICORN_NO_MODULE, 2)
    message = describe([restarted, seen_dead], "v1", DJANGO)
    assert message.startswith("Instances i-2, i-1 of version v1 failed: web exited with status 3: ")
    assert "Last output of i-1: " in message
