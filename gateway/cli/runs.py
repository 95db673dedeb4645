import typer

app = typer.Typer(help="Start, watch, cancel and resume runs.", no_args_is_help=True)
