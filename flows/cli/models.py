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


def _actor() -> str:
    import getpass

    return f"{getpass.getuser()} (retrain CLI)"


def _changed(change) -> int:
    render.print_serving_change(change)
    return ExitCode.DONE


def _deploy(args) -> int:
    from retrain.services import serving

    return _changed(serving.deploy(args.name, args.version, actor=_actor(), reason=args.reason))


def _undeploy(args) -> int:
    from retrain.services import serving

    return _changed(serving.undeploy(args.name, actor=_actor(), reason=args.reason))


def _rollback(args) -> int:
    from retrain.services import serving

    return _changed(serving.rollback(args.name, actor=_actor(), reason=args.reason))


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
    models_show = model.add_parser("show", help="one model's versions and serving history")
    models_show.add_argument("name")
    models_show.set_defaults(fn=_show)
    deploy = model.add_parser("deploy", help="make version N the champion and serve it")
    deploy.add_argument("name")
    deploy.add_argument("--version", required=True, help="registered version to serve")
    undeploy = model.add_parser("undeploy", help="serve nothing for the model (the champion "
                                                 "stays the baseline new runs must beat)")
    undeploy.add_argument("name")
    rollback = model.add_parser("rollback", help="the previous champion again")
    rollback.add_argument("name")
    for command, fn in ((deploy, _deploy), (undeploy, _undeploy), (rollback, _rollback)):
        command.add_argument("--reason", help="why, kept in the model's history")
        command.set_defaults(fn=fn)
    check = model.add_parser("check-name", help="is a model name free?")
    check.add_argument("name")
    check.set_defaults(fn=_check_name)
