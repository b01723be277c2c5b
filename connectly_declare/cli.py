"""The command line. The only module that imports click: it parses options into plain
arguments, calls the core, prints what it returns and maps errors to exit codes
(0 ok / no changes, 1 error, 2 changes present with --detailed-exitcode, 3 internal error,
130 interrupted)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from connectly_declare import __version__, clock
from connectly_declare.errors import DeclareError

PROG = "connectly-declare"
EXIT_INTERNAL = 3
CRASH_LOG = ".declare-crash.log"


class Context:
    """Options shared by every command."""

    def __init__(self, directory: Path | None, environment: str | None = None) -> None:
        self.directory = directory
        # --env NAME / DECLARE_ENV; resolve with environments.resolve_environment(config, it)
        self.environment = environment
        self.sim = False  # `state --sim`: the simulator's ledger

    @property
    def start(self) -> Path:
        return self.directory if self.directory is not None else Path.cwd()


pass_ctx = click.make_pass_decorator(Context)

_DIRECTORY_HELP = "Run as if started in DIR (the workspace is found from there upward)."


def _set_directory(click_ctx: click.Context, _param: click.Parameter,
                   value: Path | None) -> None:
    # `connectly-declare validate -C campaigns` is how people type it (and how pre-commit's
    # `args: [-C, campaigns]` lands, after the entry's subcommand): the later -C wins.
    if value is not None:
        shared = click_ctx.find_object(Context)
        if shared is not None:
            shared.directory = value


def _directory_option(fn: Any) -> Any:
    """`-C DIR` after the subcommand too (the same option as before it)."""
    return click.option("-C", "chdir", type=click.Path(file_okay=False, path_type=Path),
                        default=None, expose_value=False, callback=_set_directory,
                        help=_DIRECTORY_HELP)(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_DIRECTORY_HELP + " Also accepted after the subcommand.",
)
@click.option(
    "--env",
    "environment",
    metavar="NAME",
    envvar="DECLARE_ENV",
    default=None,
    help="The environment of declare.yaml to work on (staging, production...) "
         "[env: DECLARE_ENV].",
)
@click.version_option(__version__, prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, environment: str | None) -> None:
    """Connectly campaign sendouts as code: validate, plan, apply.

    Type `connectly-declare`, not `declare`: in bash and zsh `declare` is a shell
    builtin that silently wins over this program.
    """
    # main() passes its own Context as obj, so it still knows -C DIR when an error
    # escapes the command (for annotations); other callers (CliRunner) get a fresh one.
    if not isinstance(ctx.obj, Context):
        ctx.obj = Context(None)
    ctx.obj.directory = directory
    ctx.obj.environment = (environment or "").strip() or None


def _github_annotate(problems: Sequence[Any], start: Path) -> None:
    """In a GitHub Actions job, repeat problems as annotations on stdout."""
    from connectly_declare.commands.validate import annotate

    annotate(problems, start, sys.stdout)


def _report_error(err: DeclareError) -> None:
    from connectly_declare.report.escape import terminal
    from connectly_declare.report.mask import mask_numbers

    # Messages quote names and data from untrusted files: escape controls so an error
    # cannot clear the screen or set the clipboard (SECURITY.md, "Output"), and mask phone
    # numbers: the row is named, the number is in the file.
    for problem in err.problems:
        text = f"error: {problem}" if not str(problem.location) else str(problem)
        click.echo(terminal(mask_numbers(text)), err=True)


def _write_crash_log(exc: BaseException) -> str:
    path = Path.cwd() / CRASH_LOG
    text = (
        f"{PROG} {__version__} crashed at {clock.now().isoformat()}\n"
        f"python {sys.version.split()[0]} args {sys.argv[1:]!r}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        return "(could not write a crash log)"
    return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `connectly-declare` / `declare` / `python -m connectly_declare`."""
    options = Context(None)
    try:
        result: Any = cli.main(args=list(argv) if argv is not None else None,
                               prog_name=PROG, standalone_mode=False, obj=options)
    except DeclareError as err:
        _report_error(err)
        _github_annotate(err.problems, options.start)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return 1 if err.exit_code == 2 else err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except Exception as exc:
        if os.environ.get("DECLARE_DEBUG"):
            raise
        log = _write_crash_log(exc)
        click.echo(
            f"internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in {PROG} {__version__}; details were written to {log}.",
            err=True,
        )
        return EXIT_INTERNAL
    return int(result or 0)


# Commands are registered below, one section per feature module. Each command turns its
# options into plain arguments, calls one function of the core and returns an exit code.


# --- sim: the local Connectly simulator (connectly_declare/sim) ------------------------


@cli.command("sim")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port; the URL is printed).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on; other addresses are refused.")
@click.option("--catalog", "catalog", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Catalog file (YAML or JSON): businesses, API keys, campaigns "
              "[default: the workspace's Campaign manifests].")
@click.option("--api-key", envvar="DECLARE_SIM_API_KEY", default=None,
              help="An API key every business accepts too [env: DECLARE_SIM_API_KEY].")
@click.option("--rate-limit", type=click.FloatRange(min=0), default=200.0, show_default=True,
              help="Requests per second per API key (token bucket); 0 turns it off.")
@click.option("--burst", type=click.IntRange(min=1), default=None,
              help="Token bucket size (default: the rate limit).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0,
              help="Latency added to every request.")
@click.option("--jitter-ms", type=click.FloatRange(min=0), default=0.0,
              help="Random extra latency, uniform in [0, jitter].")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests answered 500 (nothing accepted).")
@click.option("--429-rate", "rate_429", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests answered 429 (nothing accepted).")
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests accepted, then held past the client's timeout.")
@click.option("--hang-seconds", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="How long --timeout-rate holds a response.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests accepted, then dropped without an answer.")
@click.option("--seed", type=int, default=None, help="Seed of the faults and generated ids.")
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
@click.option("--repeat-style", type=click.Choice(["page", "silent"]), default="page",
              show_default=True,
              help="How an allow_one repeat is answered: page = ERROR_CODE_CAMPAIGN_ENTRY_INVALID "
                   "on the group, as the vendor's page shows; silent = rejected without an error.")
@_directory_option
@pass_ctx
def sim_command(ctx: Context, port: int, host: str, catalog: Path | None, api_key: str | None,
                rate_limit: float, burst: int | None, latency_ms: float, jitter_ms: float,
                fail_rate: float, rate_429: float, timeout_rate: float, hang_seconds: float,
                drop_rate: float, seed: int | None, access_log: bool, repeat_style: str) -> int:
    """Serve a local Connectly simulator on loopback until Ctrl-C.

    Its campaigns come from --catalog FILE, or else from the workspace's Campaign
    manifests. Examples:

      connectly-declare sim --catalog sim-catalog.yaml --port 8765

      connectly-declare -C campaigns sim --drop-rate 0.05 --seed 1
    """
    from connectly_declare.sim.faults import FaultConfig
    from connectly_declare.sim.run import SimOptions, serve

    faults = FaultConfig(latency_ms=latency_ms, jitter_ms=jitter_ms, error_500_rate=fail_rate,
                         error_429_rate=rate_429, timeout_after_accept_rate=timeout_rate,
                         drop_after_accept_rate=drop_rate, hang_seconds=hang_seconds,
                         seed=seed)
    options = SimOptions(catalog=catalog, workspace=ctx.start, environment=ctx.environment,
                         host=host, port=port, api_key=api_key,
                         rate_limit=rate_limit or None, burst=burst, faults=faults,
                         access_log=access_log,
                         repeat_style="silent" if repeat_style == "silent" else "page")
    return serve(options, echo=click.echo)


# --- validate, init, schema: the workspace (workspace/, commands/init.py) ---------------


@cli.command("validate")
@click.option("--data", "data", is_flag=True,
              help="Read the data files too: every audience and every sendout's entries "
                   "(missing files or columns, template fields a source lacks, invalid "
                   "phone numbers), reporting every problem at once.")
@_directory_option
@pass_ctx
def validate_command(ctx: Context, data: bool) -> int:
    """Check declare.yaml and every manifest, offline; exit 0 when valid, 1 when not.

    Every problem is printed as FILE:LINE:COL: message (paths relative to the workspace
    root). With --data the data files are read as a plan reads them.

    \b
    Examples:
      connectly-declare -C campaigns validate
      connectly-declare validate --data -C campaigns
    """
    from connectly_declare.commands.validate import run_validate

    return run_validate(ctx.start, data=data, out=sys.stdout, err=sys.stderr)


@cli.command("init")
@click.argument("directory", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@_directory_option
@pass_ctx
def init_command(ctx: Context, directory: Path) -> int:
    """Scaffold a working example workspace in DIRECTORY (new or empty; default: here).

    Never overwrites: refuses a folder that is not empty.

    \b
    Example:
      connectly-declare init my-sendouts
    """
    from connectly_declare.commands.init import init_workspace

    # `-C DIR init` scaffolds in DIR, as every other command runs in it.
    base = ctx.directory if ctx.directory is not None else Path(".")
    result = init_workspace(base / directory)
    click.echo(f"Created a workspace in {result.root} ({len(result.files)} files):")
    for name in result.files:
        click.echo(f"  {name}")
    click.echo("Next steps:")
    for step in result.next_steps:
        click.echo(f"  {step}")
    return 0


@cli.command("schema")
@click.option("--kind", type=click.Choice(["manifests", "config"]), default="manifests",
              show_default=True, help="manifests: Campaign/Audience/Sendout; config: "
              "declare.yaml.")
def schema_command(kind: str) -> int:
    """Print the JSON Schema of the manifests (or of declare.yaml).

    \b
    Example:
      connectly-declare schema > schema/manifests.schema.json
    """
    from connectly_declare.workspace.schema import dump

    click.echo(dump(kind), nl=False)
    return 0


# --- apply: sending a plan (commands/apply*.py, apply/) --------------------------------


RETRY_ALL = "\x00all"  # --retry-failed given without a sendout


def _ask(question: str, word: str) -> bool:
    """Only `word` proceeds: `yes` (Terraform's rule: `y` or Enter are not enough), or
    against a real endpoint the environment or business id (`terraform destroy`'s habit).

    Ctrl-D (end of input) is a "no": the user declined, so apply exits as cancelled (1), not
    as interrupted (130, which click's prompt would make of it)."""
    click.echo(f"{question}: ", nl=False, err=True)
    answer = sys.stdin.readline()
    if not answer:
        click.echo("", err=True)  # the terminal's cursor is still after the question
    return answer.strip() == word


def _plan_options(fn: Any) -> Any:
    """The options that shape a new plan, shared by `plan` and `apply`."""
    for option in reversed([
        click.option("--allow-past-schedule", is_flag=True,
                     help="Allow sending entries whose schedule has already passed."),
        click.option("--recover-in-doubt", is_flag=True,
                     help="Send in-doubt allow_multiple entries once more under allow_one "
                          "where the ledger shows no other delivery of the campaign to that "
                          "client (the server then rejects a repeat); the rest stay blocked."),
        click.option("--quiet-hours", "quiet_hours", type=click.Choice(["shift", "hold"]),
                     default="shift", show_default=True,
                     help="An entry inside the recipient's quiet hours (declare.yaml / Sendout "
                          "quiet_hours): shift it to their end, or hold it back for a later "
                          "plan."),
    ]):
        fn = option(fn)
    return fn


@cli.command("apply")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--env", "environment", default=None,
              help="Environment of declare.yaml to apply to (default: the global --env; a "
                   "saved plan records its own).")
@click.option("--target", "targets", multiple=True, metavar="SENDOUT",
              help="Apply only this sendout (repeatable; not with PLAN_FILE).")
@click.option("--max-recipients", type=click.IntRange(min=0), default=None,
              help="Refuse the plan when more than N entries would be sent.")
@_plan_options
@click.option("--auto-approve", is_flag=True,
              help="Send without asking (pipelines). Without a terminal this is required.")
@click.option("--sim", is_flag=True,
              help="Apply against a simulator started in-process on loopback, with a "
                   "throwaway API key and its own ledger (.declare/sim-ledger.jsonl; per "
                   "environment .declare/sim-ledger.ENV.jsonl); with --base-url, a "
                   "`connectly-declare sim` running apart.")
@click.option("--base-url", default=None, metavar="URL",
              help="Send to URL instead of declare.yaml's base_url, e.g. a `connectly-declare "
                   "sim` running apart (with --sim) [env: DECLARE_BASE_URL].")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=None,
              help="Entries per request (default: a saved plan's own, else declare.yaml's "
                   "batch_size).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for another apply's ledger lock before giving up.")
@click.option("--show-recipients", is_flag=True,
              help="Show phone numbers unmasked in the plan.")
@click.option("--retry-failed", "retry_failed", is_flag=False, flag_value=RETRY_ALL,
              default=None, metavar="[SENDOUT]",
              help="Send entries the server refused for good (plan action `failed`) again: "
                   "every sendout's, or only SENDOUT's.")
@_directory_option
@pass_ctx
def apply_command(ctx: Context, plan_file: Path | None, environment: str | None,
                  targets: tuple[str, ...], max_recipients: int | None,
                  allow_past_schedule: bool, recover_in_doubt: bool, quiet_hours: str,
                  auto_approve: bool, sim: bool, batch_size: int | None, lock_timeout: float,
                  show_recipients: bool, retry_failed: str | None, base_url: str | None) -> int:
    """Plan, show the plan, ask, then send it in batches and record every outcome.

    The plan's header, the question and the summary say where: the endpoint, business,
    environment, ledger, and whether it is the simulator. Against an endpoint that is not
    on loopback the question wants the environment (or business id) typed, not `yes`.

    With PLAN_FILE (from `connectly-declare plan --out FILE`) sends exactly that saved plan,
    without reading manifests; a plan the ledger has moved past is refused as stale.

    Examples:

      connectly-declare -C campaigns apply --sim --auto-approve

      connectly-declare apply --auto-approve reviewed.plan.gz

      DECLARE_BASE_URL=http://127.0.0.1:8765 connectly-declare apply --sim

    Exit codes: 0 everything accepted (or nothing to send), 1 anything rejected, partial,
    unknown or an error, 130 interrupted (Ctrl-C / SIGTERM; a second Ctrl-C exits at once).
    """
    from connectly_declare.commands.apply import plan_text, run_apply
    from connectly_declare.commands.apply_source import ApplyRequest
    from connectly_declare.commands.destination import chosen_base_url

    if plan_file is not None and (targets or max_recipients is not None or allow_past_schedule
                                  or recover_in_doubt or retry_failed is not None):
        raise click.UsageError("--target, --max-recipients, --allow-past-schedule, "
                               "--recover-in-doubt and --retry-failed shape a new plan; a saved "
                               "plan is applied "
                               "exactly as reviewed")
    request = ApplyRequest(start=ctx.start, plan_file=plan_file,
                           environment=environment or ctx.environment,
                           auto_approve=auto_approve, sim=sim, batch_size=batch_size,
                           lock_timeout=lock_timeout, show_recipients=show_recipients,
                           targets=targets, max_recipients=max_recipients,
                           allow_past_schedule=allow_past_schedule,
                           recover_in_doubt=recover_in_doubt,
                           quiet_hours="hold" if quiet_hours == "hold" else "shift",
                           retry_failed=retry_failed is not None,
                           retry_failed_sendouts=() if retry_failed in (None, RETRY_ALL)
                           else (str(retry_failed),),
                           base_url=chosen_base_url(base_url, os.environ))
    confirm = _ask if sys.stdin.isatty() else None
    color = _color("text")  # the same plan as `plan` shows, coloured alike on a terminal
    return run_apply(request, out=sys.stdout, err=sys.stderr, confirm=confirm,
                     show_plan=lambda plan: plan_text(plan, show_recipients=show_recipients,
                                                      color=color))


# --- plan, show, state: the ledger and the plan (commands/plan.py, commands/state.py) ---

_FORMAT = click.Choice(["text", "markdown", "json"])


def _color(fmt: str) -> bool:
    # no-color.org: NO_COLOR turns colour off when "present and not an empty string".
    return fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _show_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--format", "fmt", type=_FORMAT, default="text", show_default=True,
                     help="text for terminals, markdown for pull-request comments (at most "
                          "60,000 characters), json for bots."),
        click.option("--details", is_flag=True, help="List every entry to send (text)."),
        click.option("--show-recipients", is_flag=True,
                     help="Show phone numbers unmasked (masked by default)."),
        click.option("--detailed-exitcode", is_flag=True,
                     help="Exit 2 when something would be sent (0: nothing, 1: error)."),
    ]):
        fn = option(fn)
    return fn


@cli.command("plan")
@click.option("--env", "environment", default=None,
              help="Environment of declare.yaml to plan for (default: the global --env).")
@click.option("--target", "targets", multiple=True, metavar="SENDOUT",
              help="Plan only this sendout (repeatable); orphans are then only looked for "
                   "among the targeted sendouts.")
@click.option("--max-recipients", type=click.IntRange(min=0), default=None,
              help="Fail the plan when more than N entries would be sent.")
@_plan_options
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Save the plan to FILE (JSON; gzip when it ends in .gz) "
                                 "for `connectly-declare apply FILE`.")
@click.option("--out-comment", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the Markdown plan as a pull-request comment "
                                 "body to FILE, first line a hidden marker "
                                 "(<!-- connectly-declare:plan:ENV -->) a bot finds to update "
                                 "its comment. Phone numbers always masked.")
@click.option("--retry-failed", "retry_failed", is_flag=False, flag_value=RETRY_ALL,
              default=None, metavar="[SENDOUT]",
              help="Plan entries the server refused for good (`failed`) as `retry`: every "
                   "sendout's, or only SENDOUT's.")
@click.option("--sim", is_flag=True,
              help="Plan the simulator's side: against its own ledger "
                   "(.declare/sim-ledger.jsonl), as `apply --sim` would send.")
@click.option("--base-url", default=None, metavar="URL",
              help="The endpoint the plan is for, instead of declare.yaml's base_url "
                   "(recorded in a saved plan) [env: DECLARE_BASE_URL].")
@_show_options
@_directory_option
@pass_ctx
def plan_command(ctx: Context, environment: str | None, targets: tuple[str, ...],
                 max_recipients: int | None, allow_past_schedule: bool,
                 recover_in_doubt: bool, quiet_hours: str, out_file: Path | None,
                 out_comment: Path | None, retry_failed: str | None, sim: bool,
                 base_url: str | None, fmt: str, details: bool, show_recipients: bool,
                 detailed_exitcode: bool) -> int:
    """Show what would be sent that has not been sent yet: offline, no API key needed.

    Per sendout it counts send, resend, retry (sent by apply) and noop, drift, failed,
    blocked, orphan, held, capped, waiting (not sent; held and capped are planned again
    later, waiting when a rollout wave's gate opens). The ledger is read without locking.

    \b
    Examples:
      connectly-declare -C campaigns plan
      connectly-declare plan --format markdown > plan.md
      connectly-declare plan --out reviewed.plan.gz --detailed-exitcode
      connectly-declare plan --sim    (after `apply --sim`: the simulator's ledger)

    Exit codes: 0 ok, 1 error (the plan is refused), 2 changes present (with
    --detailed-exitcode).
    """
    from connectly_declare.commands.destination import chosen_base_url
    from connectly_declare.commands.plan import PlanRequest, ShowRequest, run_plan

    show = ShowRequest(fmt=fmt, details=details, show_recipients=show_recipients,
                       detailed_exitcode=detailed_exitcode, color=_color(fmt))
    request = PlanRequest(start=ctx.start, environment=environment or ctx.environment,
                          targets=targets, max_recipients=max_recipients,
                          allow_past_schedule=allow_past_schedule,
                          recover_in_doubt=recover_in_doubt, out_file=out_file, show=show,
                          quiet_hours="hold" if quiet_hours == "hold" else "shift",
                          out_comment=out_comment, retry_failed=retry_failed is not None,
                          retry_failed_sendouts=() if retry_failed in (None, RETRY_ALL)
                          else (str(retry_failed),), sim=sim,
                          base_url=chosen_base_url(base_url, os.environ))
    return run_plan(request, out=sys.stdout, err=sys.stderr)


@cli.command("show")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sim", is_flag=True,
              help="Expect a plan of the simulator's side (`plan --sim --out FILE`); a plan "
                   "for real sends is refused.")
@_show_options
def show_command(plan_file: Path, sim: bool, fmt: str, details: bool, show_recipients: bool,
                 detailed_exitcode: bool) -> int:
    """Render a saved plan (from `connectly-declare plan --out FILE`) in any format. Its
    header says which side it is for (the simulator or real sends) and where.

    \b
    Example:
      connectly-declare show reviewed.plan.gz --format markdown
    """
    from connectly_declare.commands.plan import ShowRequest, run_show

    show = ShowRequest(fmt=fmt, details=details, show_recipients=show_recipients,
                       detailed_exitcode=detailed_exitcode, color=_color(fmt))
    return run_show(plan_file, show, out=sys.stdout, sim=sim)


@cli.group("state")
@click.option("--env", "environment", default=None,
              help="Environment of declare.yaml whose ledger to use (default: global --env).")
@click.option("--sim", is_flag=True,
              help="The simulator's ledger (.declare/sim-ledger.jsonl, what `apply --sim` "
                   "wrote), not the real one.")
@_directory_option
@click.pass_context
def state_group(click_ctx: click.Context, environment: str | None, sim: bool) -> None:
    """Look at and repair the ledger: list, show, resolve, export, unlock.

    Reads declare.yaml only (never the manifests), so a broken manifest never stops you
    from inspecting the state.
    """
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    if environment:
        ctx.environment = environment
    ctx.sim = sim


def _state(ctx: Context) -> Any:
    from connectly_declare.commands.state import open_state

    return open_state(ctx.start, ctx.environment, sim=ctx.sim)


@state_group.command("list")
@click.option("--sendout", default=None, help="Only keys last sent by this sendout.")
@click.option("--status", type=click.Choice(["accepted", "rejected", "partial", "unknown"]),
              default=None, help="Only keys with this status.")
@click.option("--show-recipients", is_flag=True, help="Show phone numbers unmasked.")
@_directory_option
@pass_ctx
def state_list_command(ctx: Context, sendout: str | None, status: str | None,
                       show_recipients: bool) -> int:
    """One line per key: status, client, campaign, sendout, last time, error."""
    from connectly_declare.commands.state import state_list

    return state_list(_state(ctx), sys.stdout, sendout=sendout, status=status,
                      show_recipients=show_recipients)


@state_group.command("show")
@click.argument("client")
@click.option("--show-recipients", is_flag=True, help="Show phone numbers unmasked.")
@_directory_option
@pass_ctx
def state_show_command(ctx: Context, client: str, show_recipients: bool) -> int:
    """Everything the ledger knows about CLIENT (any phone format; the workspace's default
    region is used for numbers without a country code)."""
    from connectly_declare.commands.state import state_show

    return state_show(_state(ctx), sys.stdout, client, show_recipients=show_recipients)


@state_group.command("resolve")
@click.argument("client", required=False)
@click.option("--campaign", default=None,
              help="The campaign name, exactly (required with CLIENT; a filter in bulk).")
@click.option("--as", "resolved_as", type=click.Choice(["accepted", "rejected", "unknown",
                                                         "unsent"]), required=True,
              help="accepted: they did receive it; rejected: they did not (the next plan "
                   "retries it); unknown: back in doubt; unsent: they did not, forget the "
                   "attempt (the next plan sends it again).")
@click.option("--reason", default="",
              help="Why (kept in the ledger). Required in bulk, and for a key that is not "
                   "in doubt.")
@click.option("--sendout", default=None,
              help="With CLIENT: which sendout's key, when there are several. In bulk: only "
                   "keys of this sendout.")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["accepted", "rejected", "partial", "unknown", "in-doubt",
                                 "failed"]),
              help="Bulk: only keys with this status (repeatable; in-doubt = unknown or "
                   "partial; failed = rejected for a permanent reason, the plan's `failed`).")
@click.option("--error-code", default=None,
              help="Bulk: only keys whose recorded error has this code "
                   "(e.g. ERROR_CODE_CAMPAIGN_ENTRY_INVALID).")
@click.option("--clients", "clients_file", type=click.Path(dir_okay=False), default=None,
              help="Bulk: only these clients: a file of phone numbers, one E.164 a line.")
@click.option("--dry-run", is_flag=True,
              help="Bulk: show what would change (counts, masked samples); write nothing.")
@click.option("--show-recipients", is_flag=True, help="Show phone numbers unmasked.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for the ledger lock.")
@_directory_option
@pass_ctx
def state_resolve_command(ctx: Context, client: str | None, campaign: str | None,
                          resolved_as: str, reason: str, sendout: str | None,
                          statuses: tuple[str, ...], error_code: str | None,
                          clients_file: str | None, dry_run: bool, show_recipients: bool,
                          lock_timeout: float) -> int:
    """Record a verdict on one key (CLIENT) or, without CLIENT, on every key matching the
    selectors (bulk, any status, one ledger record). History is never rewritten.

    \b
    Examples:
      connectly-declare state resolve +16505551234 --campaign "spring sale 2027" --as unsent
      connectly-declare state resolve --sendout spring-sale --status in-doubt \\
          --as accepted --reason "all in the inbox" --dry-run
      connectly-declare state resolve --clients missed.txt --as rejected --reason "not in inbox"
    """
    from connectly_declare.commands.resolve import Selection, read_clients, resolve_bulk
    from connectly_declare.commands.state import state_resolve

    verdict: Any = resolved_as  # one of click's choices: a ResolvedAs
    state = _state(ctx)
    if client is not None:
        if statuses or error_code or clients_file or dry_run:
            raise DeclareError("--status, --error-code, --clients and --dry-run select keys "
                               "in bulk: give them without CLIENT")
        if campaign is None:
            raise DeclareError("state resolve CLIENT needs --campaign NAME")
        return state_resolve(state, sys.stdout, client, campaign=campaign,
                             resolved_as=verdict, reason=reason, sendout=sendout,
                             lock_timeout=lock_timeout)
    clients = None
    if clients_file is not None:
        clients = read_clients(Path(clients_file), state.config.default_region,
                               display=clients_file)
    selection = Selection(sendout=sendout, statuses=statuses, error_code=error_code,
                          campaign=campaign, clients=clients)
    return resolve_bulk(state, sys.stdout, selection, resolved_as=verdict, reason=reason,
                        dry_run=dry_run, lock_timeout=lock_timeout,
                        show_recipients=show_recipients)


@state_group.command("export")
@_directory_option
@pass_ctx
def state_export_command(ctx: Context) -> int:
    """The folded state as JSON (one object per key; phone numbers unmasked: it is data)."""
    from connectly_declare.commands.state import state_export

    return state_export(_state(ctx), sys.stdout)


@state_group.command("unlock")
@click.argument("lock_id")
@_directory_option
@pass_ctx
def state_unlock_command(ctx: Context, lock_id: str) -> int:
    """Remove a stale writer lock by its id (printed by the command that found it locked).
    A lock held by a running process on this machine is never removed."""
    from connectly_declare.commands.state import state_unlock

    return state_unlock(_state(ctx), sys.stdout, lock_id)


# --- render: sample entries of a sendout (commands/render.py, entries/, audience/) -----


@cli.command("render")
@click.argument("sendout")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="Entries to print (0: all); reading stops there.")
@click.option("--show-recipients", is_flag=True,
              help="Show phone numbers unmasked (masked by default).")
@_directory_option
@pass_ctx
def render_command(ctx: Context, sendout: str, limit: int, show_recipients: bool) -> int:
    """Print a sendout's entries as JSON lines: client, campaign, version, the rendered
    variables, scheduledAt, fingerprint and the source row. Offline: no API key needed.

    A summary (read, duplicates, exclusions, skipped invalid numbers) goes to stderr.

    \b
    Examples:
      connectly-declare -C campaigns render spring-sale --limit 3
      connectly-declare render vip-early-access --limit 0 > entries.jsonl
    """
    from connectly_declare.commands.render import render, summary
    from connectly_declare.workspace.load import load_workspace

    # Each line is written as its entry is made (nothing held: `--limit 0` of millions
    # stays flat); a data error stops the stream after the complete lines already written.
    result = render(load_workspace(ctx.start), sendout, limit=limit,
                    show_recipients=show_recipients, emit=click.echo)
    click.echo(summary(result), err=True)
    return 0


# --- state migrate: local ledger -> PostgreSQL (commands/migrate.py, ledger/migrate.py) -


@state_group.command("migrate")
@click.option("--to", "backend", type=click.Choice(["postgres"]), required=True,
              help="The backend to copy the ledger into.")
@click.option("--from", "source_path", default=None, metavar="PATH",
              help="The local ledger to copy (default: the one declare.yaml names, or, "
                   "once declare.yaml says postgres, .declare/ledger.jsonl; with --env, "
                   ".declare/ledger.ENV.jsonl).")
@click.option("--dsn-env", default=None, metavar="VAR",
              help="Variable holding the PostgreSQL connection string (default: "
                   "declare.yaml's state.dsn_env, else DECLARE_PG_DSN).")
@click.option("--schema", default=None,
              help="PostgreSQL schema for the tables (default: declare.yaml's, else "
                   "connectly_declare).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for either ledger's writer lock.")
@_directory_option
@pass_ctx
def state_migrate_command(ctx: Context, backend: str, source_path: str | None,
                          dsn_env: str | None, schema: str | None, lock_timeout: float) -> int:
    """Copy the local ledger into PostgreSQL, verified record for record.

    Refuses a destination that holds another ledger; running it again is harmless (and catches
    up a copy that fell behind). Then point declare.yaml's state at postgres.

    \b
    Example:
      DECLARE_PG_DSN=postgresql://... connectly-declare --env production state migrate --to postgres
    """
    from connectly_declare.commands.migrate import run_migrate

    return run_migrate(ctx.start, ctx.environment, source_path=source_path, dsn_env=dsn_env,
                       schema=schema, lock_timeout=lock_timeout, out=sys.stdout)
