import typer

providers = typer.Typer(help="Add and list providers (teams).", no_args_is_help=True)
services = typer.Typer(help="Add and list services.", no_args_is_help=True)
