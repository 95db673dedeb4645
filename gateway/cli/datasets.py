import typer

app = typer.Typer(help="Import and list datasets.", no_args_is_help=True)
