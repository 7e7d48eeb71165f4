"""The ``vultr-scraper`` command line. Each command group lives in its own module.

The command modules are cheap to import (see ``common``): ``--help``, ``-V`` and
``COMMAND --help`` load click and this package only; a command loads what it uses when it runs.
"""

from __future__ import annotations

import sys

import click

from vultr_scraper_worker.cli import (
    alerts_cmd,
    catalog_cmd,
    config_cmd,
    export_cmd,
    health_cmd,
    maintenance_cmd,
    offerings_cmd,
    plan_cmd,
    queue_cmd,
    run_cmd,
)
from vultr_scraper_worker.cli.common import State, version_string
from vultr_scraper_worker.exit_status import help_table


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=help_table(),
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(),
    envvar="VULTR_SCRAPER_CONFIG",
    help="TOML configuration file (default: $VULTR_SCRAPER_CONFIG, else built-in defaults).",
)
@click.option(
    "--version",
    "-V",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx, value),
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Track Vultr's public catalogue (plans, prices, regions, stock) and endpoint health.

    Every listing command prints an aligned table, or one JSON document with --json. Times are
    UTC; money is exact (USD). `vultr-scraper COMMAND --help` describes each command.
    """
    ctx.obj = State(config_path=config_path)


def _print_version(ctx: click.Context, wanted: bool) -> None:
    # Not click.version_option: it would look the version up (importlib.metadata) on every call.
    if wanted and not ctx.resilient_parsing:
        click.echo(version_string())
        ctx.exit()


cli.add_command(config_cmd.config)
cli.add_command(run_cmd.run)
queue_cmd.register(cli)  # worker, enqueue, jobs, retry, check
cli.add_command(health_cmd.health)
cli.add_command(alerts_cmd.alerts)
cli.add_command(maintenance_cmd.mute)
cli.add_command(maintenance_cmd.unmute)
cli.add_command(maintenance_cmd.maintenance)
catalog_cmd.register(cli)  # plans, changes, availability, quarantine
offerings_cmd.register(cli)  # apps, k8s-versions, storage-clusters, isos, databases
cli.add_command(plan_cmd.plan)
cli.add_command(export_cmd.export)


def main() -> None:
    try:
        cli(prog_name="vultr-scraper")
    except SystemExit as done:
        # `vultr-scraper plans | head`: the reader closed the pipe because it had what it
        # wanted. click exits 1 on EPIPE after wrapping stdout to silence the final flush;
        # that wrapper is how the case is told apart from a real failure.
        if done.code == 1 and type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
            raise SystemExit(0) from None
        raise
