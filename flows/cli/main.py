"""`retrain …`: run operations and run records from a terminal (over retrain/services).

    retrain db upgrade                          migrate the store to the newest schema
    retrain runs start CONFIG [--deployment D]  start a run from a YAML/JSON config file
    retrain runs estimate CONFIG                cost and duration before starting
    retrain runs rerun RUN [--deployment D]     rerun a finished run (same name, next number)
    retrain runs config RUN                     the run's config (as edited, if it was)
    retrain runs edit RUN --set PATH=VALUE …    edit a finished run's config (the template)
    retrain runs cancel RUN                     cancel a run and its Prefect flow runs
    retrain runs delete RUN --yes               delete a finished run and its artifacts
    retrain runs push RUN [--reason R]          push a blessed run that was never pushed
    retrain runs list [--model M] [--status S] [--limit N]
    retrain runs show RUN [--no-plot]           stages, metrics, epochs, training curve
    retrain runs data RUN                       statistics and schema summary, TFDV report path
    retrain runs data RUN --against [OTHER]     per-feature distances from OTHER's data
    retrain runs compare A B                    config, metrics, blessing rules, data distances
    retrain runs best [--model-type T]          best runs per model type by key metric
    retrain runs reconcile [--lookback-hours H] record runs that died before their hooks wrote
    retrain models list [--no-sync]             versions, champion, deployed, schedule
    retrain models show NAME                    one model's versions and serving history
    retrain models deploy NAME --version N      make version N the champion and serve it
    retrain models undeploy NAME                serve nothing for NAME
    retrain models rollback NAME                the previous champion again
    retrain models check-name NAME              exit 0 if free, 3 if taken, 2 if invalid
    retrain schedules preview|create|list|show|pause|resume|cancel|trigger|delete|sync
    retrain automations sync [--webhook-url URL]   (see flows/cli/schedules.py)
    retrain blocks register                     the connection blocks' types, for the UI

RUN is a run id or a unique prefix of one (6+ characters). Without --deployment a run
executes in this process; with it, it is submitted to that Prefect deployment.

Exit codes: 0 done (a run that ended completed or not blessed); 1 the run failed, crashed
or was cancelled; 2 bad input: invalid config (every bad field is listed), unknown run id
or model name; 3 name taken; 4 refused in the run's current state (the reason is printed);
5 the Prefect API, the state store or the MLflow server could not be reached, or the
Prefect API answered 429/500/502/503 past every retry (RETRAIN_API_RETRIES; one line names
the server, secrets masked, and the error); 6 an unexpected error (one line; the traceback
goes to a file under RETRAIN_HOME/logs, `--verbose` prints it). A run started here writes
its logs to such a file too and prints one line per failed stage; `--verbose` shows them.
The store is RETRAIN_DATABASE_URL (default SQLite under RETRAIN_HOME), or the block that
RETRAIN_DATABASE_BLOCK names (blocks/README.md).
"""

from __future__ import annotations

import argparse
import sys

from flows.cli.exits import ExitCode


def parser() -> argparse.ArgumentParser:
    """The `retrain` command line."""
    from flows.cli import blocks, db, models, runs, schedules

    root = argparse.ArgumentParser(prog="retrain", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.splitlines()[1:]))
    root.add_argument("--verbose", action="store_true",
                      help="print what a run logs and every traceback here, not to a log "
                           "file under RETRAIN_HOME/logs")
    groups = root.add_subparsers(dest="group", required=True)
    db.add_parsers(groups)
    runs.add_parsers(groups)
    models.add_parsers(groups)
    schedules.add_parsers(groups)
    blocks.add_parsers(groups)
    return root


def _report_invalid(what: str, error) -> None:
    """`invalid WHAT: N problem(s)`, then one line per invalid field: `path.to.field: message`."""
    print(f"invalid {what}: {error.error_count()} problem(s)", file=sys.stderr)
    lines = []
    for problem in error.errors():
        path = ".".join(str(part) for part in problem["loc"]) or "(config)"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {path}: {message}")
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; map each kind of outcome to its exit code (see the module doc)."""
    from pydantic import ValidationError

    from retrain.services.errors import InvalidSchedule, OperationRefused
    from retrain.settings import apply_gcs_connection

    args = parser().parse_args(argv)
    try:
        apply_gcs_connection()  # `runs delete` removes gs:// artifacts with the block's key
        return int(args.fn(args))
    except InvalidSchedule as exc:
        _report_invalid("schedule", exc.error)
        return ExitCode.BAD_INPUT
    except ValidationError as exc:  # services raise pydantic's own error for a config
        _report_invalid("config", exc)
        return ExitCode.BAD_INPUT
    except OperationRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return ExitCode.REFUSED
    except (LookupError, ValueError) as exc:
        print(exc.args[0] if exc.args else exc, file=sys.stderr)
        return ExitCode.BAD_INPUT
    except ConnectionError as exc:  # the Prefect API, the state store or MLflow, named
        print(f"unavailable: {exc}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    except Exception as exc:  # a bug or an unforeseen failure: the traceback goes to a file
        if args.verbose:
            raise
        from flows.cli.quiet import report_unexpected

        print(report_unexpected(exc, f"{args.group}-{getattr(args, 'cmd', '')}"),
              file=sys.stderr)
        return ExitCode.ERROR


if __name__ == "__main__":
    sys.exit(main())
