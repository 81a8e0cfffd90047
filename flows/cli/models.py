"""`retrain models …`: registered models, their versions, and whether a name is free
(over `retrain/services/catalog.py`)."""

from __future__ import annotations

from flows.cli import render
from flows.cli.exits import ExitCode


def _list(args) -> int:
    from retrain.services.catalog import list_models

    render.print_model_list(list_models(sync=not args.no_sync))
    return ExitCode.DONE


def _show(args) -> int:
    from retrain.services.catalog import list_models

    (model,) = list_models(name=args.name)
    render.print_model(model)
    return ExitCode.DONE


def _check_name(args) -> int:
    from retrain.services.catalog import check_name

    check = check_name(args.name)
    if check.taken:
        schedule = f"; schedule {check.schedule.value}" if check.schedule else ""
        print(f"{args.name!r} is taken ({check.runs} runs{schedule})")
        return ExitCode.NAME_TAKEN
    print(f"{args.name!r} is free")
    return ExitCode.DONE


def add_parsers(groups) -> None:
    """Add the `models` command group to `retrain`."""
    model = groups.add_parser("models", help="registered models").add_subparsers(
        dest="cmd", required=True)
    models_list = model.add_parser("list", help="every registered model")
    models_list.add_argument("--no-sync", action="store_true",
                             help="do not refresh versions from the MLflow registry")
    models_list.set_defaults(fn=_list)
    models_show = model.add_parser("show", help="one model's versions")
    models_show.add_argument("name")
    models_show.set_defaults(fn=_show)
    check = model.add_parser("check-name", help="is a model name free?")
    check.add_argument("name")
    check.set_defaults(fn=_check_name)
