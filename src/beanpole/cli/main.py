"""`beanpole`: a thin client of the REST API, with `eb`'s verbs.

Errors are translated here, once: `Error: <message>` on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import click
from rich.table import Table
from rich.text import Text

from beanpole import __version__
from beanpole.api import inputs
from beanpole.api.views import (
    AutoscalingView,
    CertificateView,
    DomainsView,
    EffectiveSettingView,
    EventView,
    OperationStarted,
    VersionView,
)
from beanpole.cli.access import audit, tokens
from beanpole.cli.console import out
from beanpole.cli.health import health
from beanpole.cli.keys import keys
from beanpole.cli.nodes import nodes
from beanpole.cli.server import server
from beanpole.cli.users import user
from beanpole.client import Client
from beanpole.client.source import zip_source
from beanpole.core.errors import BeanpoleError, InvalidInput
from beanpole.core.settings import ENV_NAMESPACE, parse_assignment
from beanpole.core.settings.sources import looks_secret

POLL_S = 0.5


class OperationError(BeanpoleError):
    """An operation the CLI waited for ended in failure."""


@click.group()
@click.version_option(__version__, prog_name="beanpole")
def cli() -> None:
    """Beanpole: a self-hosted Elastic Beanstalk."""


cli.add_command(server)
cli.add_command(health)
cli.add_command(keys)
cli.add_command(tokens)
cli.add_command(audit)
cli.add_command(user)
cli.add_command(nodes)


def _client() -> Client:
    return Client.discover()


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{pair!r} is not of the form KEY=VALUE.")
        out_[f"{ENV_NAMESPACE}:{key}"] = value
    return out_


def _upload(
    client: Client, application: str, source: str, label: str | None, message: str = ""
) -> VersionView:
    path = Path(source)
    if not path.exists():
        raise InvalidInput(f"Source {source!r} does not exist. Give a folder or a .zip file.")
    with tempfile.TemporaryDirectory(prefix="beanpole-") as tmp:
        bundle = Path(tmp) / "bundle.zip"
        zip_source(path, bundle)
        size = bundle.stat().st_size
        out.print(f"Uploading {path} ({size / 1024:.0f} KiB) to application {application}…")
        version = client.upload(application, bundle, label, message)
    out.print(f"Version {version.label} (sha256 {version.digest[:12]}).")
    return version


def _latest_event_id(client: Client, env: str) -> int:
    events = client.events(env, after=0, limit=1)
    return events[-1].id if events else 0


def _print_event(event: EventView) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time))
    style = {"ERROR": "red", "FATAL": "red", "WARN": "yellow"}.get(event.severity, "")
    line = f"{stamp}  {event.severity:<5} {event.message}"
    out.print(line, style=style, markup=False)


def _follow(client: Client, env: str, op_id: int, after: int) -> None:
    """Print the environment's events until the operation ends; fail if it failed."""
    while True:
        op = client.operation(op_id)
        for event in client.events(env, after=after, limit=1000):
            _print_event(event)
            after = event.id
        if op.status != "running":
            if op.status == "failed":
                raise OperationError(op.message)
            return
        time.sleep(POLL_S)


def _run_op(client: Client, env: str, no_wait: bool, start: Callable[[], OperationStarted]) -> None:
    after = _latest_event_id(client, env) if _exists(client, env) else 0
    result = start()
    if no_wait:
        out.print(f"Operation {result.operation} started.")
        return
    _follow(client, env, result.operation, after)


def _exists(client: Client, env: str) -> bool:
    try:
        client.environment(env)
    except BeanpoleError:
        return False
    return True


no_wait_option = click.option("--no-wait", is_flag=True, help="Return at once.")


@cli.command()
@click.argument("env")
@click.option("--app", "application", required=True, help="Application name.")
@click.option("--source", required=True, help="A folder or a .zip of the application.")
@click.option("--label", help="Version label (default: from the bundle's digest).")
@click.option("--cname", help="CNAME prefix (default: the environment's name).")
@click.option("--scale", type=click.IntRange(0, 100), help="Number of instances (default 1).")
@click.option("--env", "env_vars", multiple=True, metavar="K=V", help="Environment property.")
@click.option("--setting", "settings", multiple=True, metavar="NAMESPACE:OPTION=VALUE")
@click.option(
    "--platform",
    type=click.Choice(get_args(inputs.PlatformName)),
    help="The platform every version runs on (default: detected from each bundle). "
    "procfile runs the Procfile and installs nothing; docker needs Docker's engine "
    "(scripts/bootstrap.sh --docker).",
)
@click.option(
    "--cfg",
    "saved_configuration",
    metavar="NAME",
    help="Start from the application's saved configuration NAME (`beanpole config list`); "
    "--setting and --env win over it.",
)
@no_wait_option
def create(
    env: str,
    application: str,
    source: str,
    label: str | None,
    cname: str | None,
    scale: int | None,
    env_vars: tuple[str, ...],
    settings: tuple[str, ...],
    platform: inputs.PlatformName | None,
    saved_configuration: str | None,
    no_wait: bool,
) -> None:
    """Create an environment running SOURCE and wait until it is Ready."""
    options = dict(parse_assignment(s) for s in settings)
    options.update(_env_pairs(env_vars))
    spec = inputs.CreateEnvironment(
        name=env,
        application=application,
        cname=cname,
        settings=options,
        scale=scale,
        platform=platform,
        saved_configuration=saved_configuration,
    )
    client = _client()
    client.check_create(spec)
    version = _upload(client, application, source, label)
    spec = spec.model_copy(update={"version_label": version.label})
    _run_op(client, env, no_wait, lambda: client.create(spec))
    if not no_wait:
        out.print(f"Environment {env} is Ready at {client.environment(env).url}")


@cli.command()
@click.argument("env")
@click.option("--source", help="A folder or a .zip of the application.")
@click.option("--label", help="Label for the new version.")
@click.option("--message", default="", help="Description of the version.")
@click.option("--version", "existing", help="Deploy an existing version instead of a source.")
@click.option(
    "--policy",
    type=click.Choice(
        ["AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"]
    ),
    help="Deployment policy for this deploy only (default: the environment's setting).",
)
@no_wait_option
def deploy(
    env: str,
    source: str | None,
    label: str | None,
    message: str,
    existing: str | None,
    policy: str | None,
    no_wait: bool,
) -> None:
    """Deploy a new version to ENV and wait until it is Ready again.

    Give --source (uploaded as a new version, named by --label) or --version (a version
    already uploaded), not both.
    """
    if existing is not None and (source is not None or label is not None or message):
        # Refused rather than guessed: deploying --version while --source was ignored
        # silently ran something other than what the user pointed at.
        given = ", ".join(
            f"--{name}"
            for name, value in (("source", source), ("label", label), ("message", message))
            if value
        )
        raise InvalidInput(
            f"--version deploys a version already uploaded; {given} describe a new one. Give "
            "--source PATH [--label LABEL] to upload and deploy a new version, or --version "
            "LABEL alone to deploy an existing one."
        )
    client = _client()
    info = client.environment(env)
    if existing is None:
        if source is None:
            raise InvalidInput("Give --source PATH (a folder or .zip) or --version LABEL.")
        client.check_deploy(env)  # before uploading a version it could not take now
        existing = _upload(client, info.application, source, label, message).label
    spec = inputs.Deploy.model_validate({"version_label": existing, "policy": policy})
    _run_op(client, env, no_wait, lambda: client.deploy(env, spec))


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(env: str, as_json: bool) -> None:
    """Show an environment's status, health, version and instances."""
    info = _client().environment(env)
    if as_json:
        click.echo(info.model_dump_json(indent=2))
        return
    out.print(f"Environment details for: {info.name}")
    for label, value in (
        ("Application name", info.application),
        ("Deployed Version", info.version),
        ("Environment ID", info.id),
        ("Platform", info.platform or "detected from each version's bundle"),
        ("Deployment ID", info.deployment_id),
        ("Status", info.status),
        ("Health", info.health),
        ("URL", info.url),
    ):
        out.print(f"  {label}: {value}", markup=False)
    if info.domains:
        out.print(f"  Domains: {', '.join(info.domains)}", markup=False)
    for cause in info.causes:
        out.print(f"  Cause: {cause}", style="yellow", markup=False)
    table = Table("instance", "state", "health", "port", "pid", "version", "up")
    for i in info.instances:
        table.add_row(
            i.id, i.state, i.health, str(i.port), str(i.pid), i.version, f"{i.uptime_s:.0f} s"
        )
    out.print(table)
    if info.autoscaling is not None:
        _print_autoscaling(info.autoscaling, brief=True)


@cli.command()
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def autoscale(env: str, as_json: bool) -> None:
    """Show ENV's auto scaling: bounds, the policy in force, its measure now against the
    thresholds, the latest decision and the scheduled actions to come."""
    view = _client().autoscaling(env)
    if as_json:
        click.echo(view.model_dump_json(indent=2))
        return
    _print_autoscaling(view, brief=False)


def _print_autoscaling(view: AutoscalingView, *, brief: bool) -> None:
    out.print("Auto scaling:")
    source = "" if view.bounds_source == "settings" else f" (from {view.bounds_source})"
    lines = [
        f"  Instances: {view.desired_capacity} desired, MinSize {view.min_size}, "
        f"MaxSize {view.max_size}{source}",
    ]
    if not brief:
        lines.append(f"  Policy: {view.policy}")
    if view.current is not None:
        lines.append(f"  Now ({_ago(view.current.at)}): {view.current.message}")
    if view.last_decision is not None:
        lines.append(
            f"  Last decision ({_ago(view.last_decision.at)}): {view.last_decision.message}"
        )
    if not brief:
        for firing in view.upcoming:
            lines.append(f"  Scheduled: {firing.description}")
        if not view.upcoming:
            lines.append("  Scheduled: none to come")
    for line in lines:
        out.print(line, markup=False)


def _ago(at: float) -> str:
    seconds = max(0.0, time.time() - at)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List environments."""
    envs = _client().environments()
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in envs], indent=2))
        return
    table = Table("environment", "application", "status", "health", "version", "url")
    for e in envs:
        table.add_row(e.name, e.application, e.status, e.health, e.version or "-", e.url)
    out.print(table)


@cli.command()
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--keep",
    type=click.IntRange(0, 10000),
    help="Keep only the newest N versions from now on (0: all); deployed ones stay.",
)
def versions(app: str, as_json: bool, keep: int | None) -> None:
    """List an application's versions."""
    client = _client()
    if keep is not None:
        for label in client.set_lifecycle(app, keep).deleted:
            out.print(f"Deleted version {label}.", markup=False)
    rows = client.versions(app)
    if as_json:
        click.echo(json.dumps([v.model_dump(mode="json") for v in rows], indent=2))
        return
    table = Table("label", "digest", "build", "created")
    for v in rows:
        table.add_row(
            v.label,
            v.digest[:12],
            v.build_status,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
        )
    out.print(table)


@cli.command()
@click.argument("env")
@click.argument("count", type=click.IntRange(0, 100), required=False)
@click.option("--min", "min_size", type=click.IntRange(0, 100), help="MinSize: fewest instances.")
@click.option("--max", "max_size", type=click.IntRange(1, 100), help="MaxSize: most instances.")
@no_wait_option
def scale(
    env: str, count: int | None, min_size: int | None, max_size: int | None, no_wait: bool
) -> None:
    """Pin ENV at COUNT instances (MinSize = MaxSize = COUNT, as `eb scale`), or with
    --min/--max set the bounds auto scaling moves within."""
    if count is None and min_size is None and max_size is None:
        raise click.UsageError(
            "Give a COUNT to pin the environment at, or --min and/or --max for auto scaling."
        )
    client = _client()

    def start() -> OperationStarted:
        started = client.scale(env, count, min_size=min_size, max_size=max_size)
        if no_wait:  # else the events that say the same are printed as they come
            for note in started.notes:
                out.print(note, markup=False)
        return started

    _run_op(client, env, no_wait, start)


@cli.command()
@click.argument("env")
@click.argument("pairs", nargs=-1, metavar="K=V...")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="K=V",
    help="A property to keep secret: stored encrypted, given to the app as is, shown as "
    "**** everywhere else. Repeat for more.",
)
@no_wait_option
def setenv(env: str, pairs: tuple[str, ...], secrets: tuple[str, ...], no_wait: bool) -> None:
    """Set environment properties; `K=` removes K. Instances are replaced without downtime."""
    if not pairs and not secrets:
        raise click.UsageError("Give at least one K=V (or --secret K=V).")
    set_: dict[str, str] = {}
    remove: list[str] = []
    for key, value in _env_pairs(pairs).items():
        if value == "":
            remove.append(key)
        else:
            set_[key] = value
    sealed = _env_pairs(secrets)
    for key, value in sealed.items():
        if value == "":
            raise click.UsageError(f"--secret {key.rpartition(':')[2]}= has no value.")
    set_.update(sealed)
    client = _client()
    change = inputs.SettingsChange(set=set_, remove=remove, secret=sorted(sealed))
    _run_op(client, env, no_wait, lambda: client.configure(env, change))


class _ConfigGroup(click.Group):
    """`config ENV …` means `config env ENV …`: every word that is not a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["env", *args]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["ENV [NAMESPACE:OPTION=VALUE]... | COMMAND [ARGS]..."]


@cli.group(cls=_ConfigGroup)
def config() -> None:
    """Show or set ENV's option settings; save, list and delete saved configurations.

    `beanpole config ENV` lists every effective setting with its source, `beanpole config
    ENV NAMESPACE:OPTION=VALUE...` sets them (an empty value removes a direct setting):
    both are short for `beanpole config env ENV ...`, which an environment named like a
    subcommand (list, save, delete) needs.
    """


@config.command("env")
@click.argument("env")
@click.argument("assignments", nargs=-1, metavar="[NAMESPACE:OPTION=VALUE]...")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.option("--show-secrets", is_flag=True, help="Show values of secret-looking properties.")
@no_wait_option
def config_env(
    env: str, assignments: tuple[str, ...], as_json: bool, show_secrets: bool, no_wait: bool
) -> None:
    """List ENV's effective settings with their sources, or set option settings.

    Without assignments: every setting, grouped by namespace, with where its value comes
    from: direct (given with create, config, setenv, scale), saved:NAME (the saved
    configuration ENV was created from), .ebextensions/FILE (the deployed version's) or
    default; that is also the precedence, highest first. Environment properties whose names
    end in PASSWORD, SECRET, TOKEN or KEY are masked unless --show-secrets.

    With NAMESPACE:OPTION=VALUE assignments: sets them; `NAMESPACE:OPTION=` removes a
    direct setting, so the saved configuration's, .ebextensions' or default value applies
    again.
    """
    if not assignments:
        _show_settings(env, as_json, show_secrets)
        return
    if as_json or show_secrets:
        form = f"env {env}" if env in config.commands else env
        raise InvalidInput(
            "--json and --show-secrets go with listing the settings: run "
            f"'beanpole config {form}' without assignments to list them."
        )
    set_: dict[str, str] = {}
    remove: list[str] = []
    for key, value in (parse_assignment(a) for a in assignments):
        (remove.append(key) if value == "" else set_.__setitem__(key, value))
    client = _client()
    change = inputs.SettingsChange(set=set_, remove=remove)
    _run_op(client, env, no_wait, lambda: client.configure(env, change))


MASK = "********"
VALUE_COLUMN = 40  # longer values push their source to the right


def _show_settings(env: str, as_json: bool, show_secrets: bool) -> None:
    view = _client().settings(env)
    masked = {
        (s.namespace, s.option)
        for s in view.effective
        if not show_secrets and s.value and _is_secret(s)
    }
    rows = [
        s.model_copy(update={"value": MASK}) if (s.namespace, s.option) in masked else s
        for s in view.effective
    ]
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    about = [f"version {view.version or 'none yet'}"]
    if view.saved_configuration:
        about.append(f"created from saved configuration {view.saved_configuration}")
    click.echo(f"Settings of {env} ({', '.join(about)}):")
    # Plain aligned text, a block per namespace: a four-column table wraps the long
    # namespaces and values past reading on an 80-column terminal.
    option_width = max((len(r.option) for r in rows), default=0)
    value_width = min(max((len(r.value) for r in rows), default=0), VALUE_COLUMN)
    namespace = None
    for row in rows:
        if row.namespace != namespace:
            namespace = row.namespace
            click.echo(f"\n{namespace}")
        click.echo(f"  {row.option:<{option_width}}  {row.value:<{value_width}}  {row.source}")
    if masked:
        out.print(
            f"{len(masked)} secret-looking value(s) masked; --show-secrets shows them.",
            markup=False,
        )


def _is_secret(setting: EffectiveSettingView) -> bool:
    return setting.namespace == ENV_NAMESPACE and looks_secret(setting.option)


@config.command("save")
@click.argument("env")
@click.argument("name")
@click.option("--description", default="", help="What the configuration is for.")
def config_save(env: str, name: str, description: str) -> None:
    """Save ENV's settings as the saved configuration NAME of its application.

    Saved: ENV's own settings (those of the saved configuration it was created from,
    overlaid with its direct ones) and its platform, not its version's .ebextensions nor
    defaults. Create an environment from it with `beanpole create ... --cfg NAME`. NAME: 1 to
    100 characters, no '/'.
    """
    client = _client()
    application = client.environment(env).application
    spec = inputs.SaveConfiguration(name=name, environment=env, description=description)
    saved = client.save_configuration(application, spec)
    out.print(
        f"Saved configuration {saved.name} of application {saved.application}: "
        f"{len(saved.settings)} setting(s) from {env}.",
        markup=False,
    )


@config.command("list")
@click.argument("app", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_list(app: str | None, as_json: bool) -> None:
    """List the saved configurations of APP (default: of every application)."""
    rows = _client().saved_configurations(app)
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("application", "name", "settings", "platform", "saved from", "created")
    for r in rows:
        table.add_row(
            Text(r.application),
            Text(r.name),
            str(len(r.settings)),
            Text(r.platform or "-"),
            Text(r.environment or "-"),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
        )
    out.print(table)


@config.command("delete")
@click.argument("app")
@click.argument("name")
def config_delete(app: str, name: str) -> None:
    """Delete APP's saved configuration NAME.

    Environments created from it keep the settings they got from it (and show them as
    saved:NAME).
    """
    _client().delete_saved_configuration(app, name)
    out.print(
        f"Deleted saved configuration {name} of application {app}; environments created "
        "from it keep its settings.",
        markup=False,
    )


@cli.command()
@click.argument("env")
def printenv(env: str) -> None:
    """Print the environment properties."""
    settings = _client().settings(env)
    for key, value in sorted(settings.environment.items()):
        click.echo(f"{key}={value}")


@cli.command()
@click.argument("env")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("-n", "--lines", default=50, show_default=True, help="How many recent events.")
def events(env: str, follow: bool, lines: int) -> None:
    """Show an environment's events."""
    client = _client()
    after = 0
    recent = client.events(env, after=0, limit=lines)
    for event in recent:
        _print_event(event)
        after = event.id
    while follow:
        time.sleep(POLL_S)
        for event in client.events(env, after=after, limit=1000):
            _print_event(event)
            after = event.id


@cli.command()
@click.argument("env")
@click.option("--instance", help="Only this instance (a stopped one too, while its logs are kept).")
@click.option("-n", "--lines", default=100, show_default=True, help="Lines of each log.")
@click.option(
    "-f", "--follow", is_flag=True, help="Print new lines of every log as they come, merged."
)
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(dir_okay=True, path_type=Path),
    help="Write every log of every instance (rotated parts too) to this zip (or folder).",
)
def logs(env: str, instance: str | None, lines: int, follow: bool, zip_path: Path | None) -> None:
    """Show, follow or zip the logs of ENV's instances.

    Prints the last lines of each log of each instance, of the access log and of the latest
    deploy log; stopped instances whose logs are kept are listed (read one with --instance).
    -f prints the new lines of every log as they come (until Ctrl-C), each prefixed by its
    instance and file. --zip writes every log of every instance, rotated parts included.
    """
    if follow and zip_path is not None:
        raise InvalidInput("Give -f or --zip, not both.")
    client = _client()
    if zip_path is not None:
        _write_bundle(client, env, zip_path, instance)
        return
    if follow:
        _follow_logs(client, env, instance)
        return
    data = client.logs(env, instance, lines)
    stopped = []
    for inst in data.instances:
        if inst.state == "stopped" and instance is None:
            stopped.append(inst)
            continue
        state = " (stopped)" if inst.state == "stopped" else ""
        for log in inst.files:
            _print_tail(f"{inst.id} {log.name}{state}", log.lines)
    if data.access is not None:
        _print_tail(f"access {data.access.name}", data.access.lines)
    if data.deploy is not None:
        deploy = data.deploy
        what = f" ({deploy.kind}, {deploy.status})" if deploy.kind is not None else ""
        _print_tail(f"deploy {deploy.name}{what}", deploy.lines)
    if stopped:
        click.echo(f"----- stopped instances (read one with: beanpole logs {env} --instance ID)")
        for inst in stopped:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(inst.last_written or 0))
            names = ", ".join(f.name for f in inst.files) or "no logs"
            click.echo(f"{inst.id}  stopped, last written {when}: {names}")


def _write_bundle(client: Client, env: str, zip_path: Path, instance: str | None) -> None:
    """Download the logs bundle to ``zip_path`` (a file, or a folder to put it in); a path
    that cannot be written is an ``Error:`` line, not a traceback."""
    if zip_path.is_dir():
        zip_path = zip_path / f"{env}-logs-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    elif not zip_path.parent.is_dir():
        raise InvalidInput(
            f"Cannot write {zip_path}: folder {zip_path.parent} does not exist. Create "
            "it, or give --zip a path in an existing folder."
        )
    try:
        size = client.log_bundle(env, zip_path, instance)
    except OSError as exc:
        raise InvalidInput(f"Cannot write {zip_path}: {exc.strerror or exc}.") from exc
    click.echo(f"Wrote {zip_path} ({_size(size)}).")


def _print_tail(title: str, lines: list[str] | None) -> None:
    click.echo(f"----- {title} -----")
    for line in lines or ():
        click.echo(line)


def _follow_logs(client: Client, env: str, instance: str | None) -> None:
    """Poll the follow endpoint, print each line prefixed by its instance and file; Ctrl-C
    ends it (exit 0)."""
    try:
        page = client.follow_logs(env, instance)
        click.echo(f"Following the logs of {env} (Ctrl-C to stop)…", err=True)
        while True:
            for line in page.lines:
                click.echo(f"{line.source} {line.file} | {line.line}")
            sys.stdout.flush()
            if not page.more:
                time.sleep(POLL_S)
            page = client.follow_logs(env, instance, page.cursor)
    except KeyboardInterrupt:
        return


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / 2**20:.1f} MiB"


@cli.command()
@click.argument("env")
def abort(env: str) -> None:
    """Stop the deployment or configuration change in progress and put ENV back as it was.

    A deployment rolls back to the previous release; a scale or settings change that is
    still starting instances stops them and restores the previous settings. An operation
    that cannot be undone half-way (create, terminate, a scale removing instances) is
    refused with an error, and so is an abort that came after the operation finished.
    """
    client = _client()
    after = _latest_event_id(client, env)
    result = client.abort(env)
    if result.operation is None:
        return
    try:
        _follow(client, env, result.operation, after)
    except OperationError:
        out.print(f"Aborted; {env} is back on its previous release and settings.")
        return
    raise OperationError(
        f"The operation on {env} completed before the abort took effect; nothing was "
        f"reverted. Run 'beanpole rollback {env}' (a deployment) or change the settings back."
    )


@cli.command()
@click.argument("env")
@no_wait_option
def rollback(env: str, no_wait: bool) -> None:
    """Deploy ENV's previous release again: its version and its settings."""
    client = _client()
    _run_op(client, env, no_wait, lambda: client.rollback(env))


@cli.command()
@click.argument("env")
@click.argument("new")
@click.option("--cname", help="CNAME prefix of the clone (default: its name).")
@no_wait_option
def clone(env: str, new: str, cname: str | None, no_wait: bool) -> None:
    """Create NEW running ENV's version with ENV's settings (for blue/green)."""
    client = _client()
    spec = inputs.CloneEnvironment(name=new, cname=cname)
    _run_op(client, new, no_wait, lambda: client.clone(env, spec))
    if not no_wait:
        out.print(f"Environment {new} is Ready at {client.environment(new).url}")


@cli.command()
@click.argument("env")
@click.argument("other")
def swap(env: str, other: str) -> None:
    """Exchange the CNAMEs (URLs) of two Ready environments, atomically in the load balancer."""
    for e in _client().swap(env, other).environments:
        out.print(f"{e.name}: {e.url}")


@cli.group()
def domains() -> None:
    """Host names an environment answers on besides its CNAME (point their DNS at the load
    balancer); they stay with it through a swap."""


@domains.command("list")
@click.argument("env")
def domains_list(env: str) -> None:
    """ENV's CNAME URL and domains."""
    view = _client().domains(env)
    out.print(f"{view.environment}: {view.cname_url} (CNAME)")
    for domain in view.domains:
        out.print(f"  {domain}")


@domains.command("add")
@click.argument("env")
@click.argument("domain")
def domains_add(env: str, domain: str) -> None:
    """Route DOMAIN (shop.example.com) to ENV too; a domain routes to one environment."""
    _answers_on(_client().add_domain(env, domain))


@domains.command("remove")
@click.argument("env")
@click.argument("domain")
def domains_remove(env: str, domain: str) -> None:
    """Stop routing DOMAIN to ENV."""
    _answers_on(_client().remove_domain(env, domain))


def _answers_on(view: DomainsView) -> None:
    out.print(f"{view.environment} answers on: {', '.join(view.domains) or 'its CNAME only'}")


@cli.group()
def certs() -> None:
    """TLS certificates the load balancer's HTTPS listener serves, chosen by the name the
    client asks for (SNI). An environment offers one by naming it in
    aws:elbv2:listener:443:SSLCertificateArns (beanpole config ENV
    aws:elbv2:listener:443:SSLCertificateArns=NAME)."""


_PEM_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@certs.command("add")
@click.argument("name")
@click.option("--cert", "cert_file", required=True, type=_PEM_FILE, help="The certificate (PEM).")
@click.option("--key", "key_file", required=True, type=_PEM_FILE, help="Its private key (PEM).")
@click.option("--chain", "chain_file", type=_PEM_FILE, help="Intermediate certificates (PEM).")
def certs_add(name: str, cert_file: Path, key_file: Path, chain_file: Path | None) -> None:
    """Store a certificate and its key as NAME, or renew NAME's: environments that name it
    are served the new one at once, without a restart. The key must not be encrypted."""
    view = _client().add_certificate(
        name,
        _read_pem(cert_file, "--cert"),
        _read_pem(key_file, "--key"),
        _read_pem(chain_file, "--chain") if chain_file else "",
    )
    verb = "Renewed" if view.renewed else "Added"
    out.print(
        f"{verb} certificate {view.name} for {', '.join(view.domains)}, valid until "
        f"{view.not_after[:10]} ({view.days_left} days left).",
        markup=False,
    )
    if view.environments:
        out.print(f"Served to: {', '.join(view.environments)}", markup=False)
    else:
        out.print(
            "Serve it with: beanpole config ENV "
            f"aws:elbv2:listener:443:SSLCertificateArns={view.name}",
            markup=False,
        )
    _warn_expiring(view)


@certs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def certs_list(as_json: bool) -> None:
    """List stored certificates, warning of those that expire within 30 days."""
    answer = _client().certificates()
    if as_json:  # the API's answer as it is: {"certificates": [...]}
        click.echo(json.dumps(answer.model_dump(mode="json"), indent=2))
        return
    views = answer.certificates
    if not views:
        out.print("No certificates. Add one with: beanpole certs add NAME --cert FILE --key FILE")
        return
    table = Table("name", "domains", "expires", "days left", "used by")
    for v in views:
        table.add_row(
            Text(v.name),
            Text(", ".join(v.domains)),
            v.not_after[:10],
            str(v.days_left),
            Text(", ".join(v.environments) or "-"),
        )
    out.print(table)
    for v in views:
        _warn_expiring(v)


@certs.command("remove")
@click.argument("name")
def certs_remove(name: str) -> None:
    """Forget certificate NAME; refused while an environment's HTTPS listener names it."""
    view = _client().remove_certificate(name)
    out.print(f"Removed certificate {view.name}.", markup=False)


def _read_pem(path: Path, option: str) -> str:
    """A PEM file's text, refused here when it cannot be one (too large, or binary: DER)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    if len(data) > inputs.MAX_PEM_TEXT:
        raise click.BadParameter(
            f"{path} has {len(data)} bytes; a PEM file of at most {inputs.MAX_PEM_TEXT} is "
            "expected.",
            param_hint=option,
        )
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise click.BadParameter(
            f"{path} is not PEM text (DER? convert it: openssl x509 -inform der -in {path} "
            "-out cert.pem).",
            param_hint=option,
        ) from None


def _warn_expiring(view: CertificateView) -> None:
    if not view.expiring:
        return
    date = view.not_after[:10]
    when = (
        f"expired on {date}"
        if view.days_left < 0
        else f"expires in {view.days_left} day{'' if view.days_left == 1 else 's'} ({date})"
    )
    out.print(
        f"Warning: certificate {view.name} {when}: renew it with beanpole certs add "
        f"{view.name} --cert ... --key ...",
        markup=False,
    )


@cli.command("releases")
@click.argument("env")
def releases_(env: str) -> None:
    """List ENV's releases (version + settings), newest first."""
    table = Table("deployment", "version", "deployed")
    for r in _client().releases(env):
        table.add_row(
            str(r.deployment_id),
            r.version,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
        )
    out.print(table)


@cli.command("open")
@click.argument("env")
def open_(env: str) -> None:
    """Open the environment's URL in a browser, or print it."""
    url = _client().environment(env).url
    has_display = bool(shutil.which("xdg-open")) and sys.stdout.isatty()
    if not (has_display and webbrowser.open(url)):
        click.echo(url)


@cli.command()
@click.argument("env")
@no_wait_option
def terminate(env: str, no_wait: bool) -> None:
    """Stop every instance of ENV and remove it from the load balancer."""
    client = _client()
    _run_op(client, env, no_wait, lambda: client.terminate(env))


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BeanpoleError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
