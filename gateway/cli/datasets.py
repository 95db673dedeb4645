"""`recoghub dataset`: import, list, show, rename, open/close to teams and delete
datasets on a running hub.

By default `import` sends the path for the hub to read on its own host (fast, nothing
copied). With `--upload` it sends the files: a clickture/tsv file as is, a folder as a
tar made on the fly (an existing .zip/.tar is sent as is), and the truth CSV.
"""

import os
import tarfile
import tempfile
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.table import Table

from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    err_console,
    fail,
    hub_answer,
    hub_client,
    print_json,
)

app = typer.Typer(
    help="Import, list, rename, open to teams and delete datasets.", no_args_is_help=True
)

IMPORT_TIMEOUT_S = 6 * 3600.0  # a large import is one long request
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class Format(StrEnum):
    clickture = "clickture"
    tsv = "tsv"
    folder = "folder"
    matching = "matching"


def _dataset_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "name", "format", "kind", "images", "labels", "teams", "created"):
        table.add_column(
            column, justify="right" if column in ("id", "images", "labels") else "left"
        )
    for d in rows:
        table.add_row(
            str(d["id"]),
            d["name"],
            d["format"],
            d["kind"],
            str(d["images"]),
            str(d["labels"]),
            "open" if d.get("open_to_teams") else "-",
            str(d.get("created_at", ""))[:16].replace("T", " "),
        )
    return table


def _tar_of(images: list[Path], root: Path | None, out: IO[bytes]) -> None:
    """A plain tar (images are compressed already) of `images`, named relative to
    `root`, or by file name when there is no root (a list file)."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for image in images:
            arcname = image.relative_to(root).as_posix() if root else image.name
            tar.add(image, arcname=arcname, recursive=False)
    out.seek(0)


def _images_under(folder: Path) -> tuple[list[Path], list[str]]:
    """The images under `folder`, and the other files (not hidden) it leaves out, as
    paths relative to it: the hub reads only .jpg, .jpeg and .png (SPEC §5)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p.relative_to(folder).as_posix() for p in files if p not in set(images)]
    return images, others


def _listed_images(list_file: Path) -> list[Path]:
    entries = (line.strip() for line in list_file.read_text(encoding="utf-8").splitlines())
    return [list_file.parent / e for e in entries if e and not e.startswith("#")]


def _upload_part(stack: ExitStack, format: Format, path: Path) -> tuple[str, IO[bytes]]:
    """(file name, open file) to upload for `path`: the file, an archive, or a tar of it."""
    if format in (Format.clickture, Format.tsv) or path.name.lower().endswith(ARCHIVE_SUFFIXES):
        if not path.is_file():
            fail(f"{path} is not a file", "give the dataset file to upload")
        return path.name, stack.enter_context(path.open("rb"))
    images: list[Path]
    root: Path | None
    if path.is_dir():
        (images, ignored), root = _images_under(path), path
        if ignored:  # said before packing: the upload holds only the images
            line = ignored_line(len(ignored), ignored)
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    elif format is Format.matching and path.is_file():
        images, root = _listed_images(path), None
        missing = [str(p) for p in images if not p.is_file()]
        if missing:
            fail(f"{len(missing)} listed images are missing, first {missing[0]}")
    else:
        fail(f"{path} is not a folder", "give the image folder (or a .zip/.tar of it)")
    if not images:
        fail(f"no .jpg, .jpeg or .png images under {path}")
    spool = stack.enter_context(tempfile.TemporaryFile())
    with err_console.status(f"packing {len(images)} images..."):
        _tar_of(images, root, spool)
    return f"{path.name}.tar", spool


@app.command("import")
def import_dataset(
    name: Annotated[str, typer.Argument(help="Name of the new dataset.")],
    path: Annotated[Path, typer.Argument(help="Dataset file or folder.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="Source format.")],
    truth: Annotated[
        Path | None, typer.Option(help="matching: the query_id,reference_id CSV.")
    ] = None,
    key_column: Annotated[int | None, typer.Option(help="tsv: 0-based key column.")] = None,
    label_column: Annotated[
        list[int] | None, typer.Option(help="tsv: 0-based label column (repeat for several).")
    ] = None,
    image_column: Annotated[
        int | None, typer.Option(help="tsv: 0-based base64 image column.")
    ] = None,
    label_separator: Annotated[
        str | None, typer.Option(help="tsv: split label cells at this text.")
    ] = None,
    header: Annotated[bool, typer.Option("--header", help="tsv: skip the first line.")] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip bad lines and report them.")
    ] = False,
    upload: Annotated[
        bool,
        typer.Option("--upload", help="Send the files instead of a path the hub reads itself."),
    ] = False,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a dataset (clickture, tsv, folder or matching) into the hub."""
    if format is Format.matching and truth is None:
        fail("format matching needs --truth CSV (query_id,reference_id)")
    fields: dict[str, Any] = {"name": name, "format": format.value}
    options = {
        "key_column": key_column,
        "image_column": image_column,
        "label_separator": label_separator,
    }
    fields.update({k: v for k, v in options.items() if v is not None})
    if label_column:
        fields["label_columns"] = label_column
    if header:
        fields["header"] = True
    if skip_bad:
        fields["skip_bad"] = True
    with ExitStack() as stack:
        client = stack.enter_context(hub_client(hub, token, timeout=IMPORT_TIMEOUT_S))
        if upload:
            files = {"file": _upload_part(stack, format, path)}
            if truth is not None:
                if not truth.is_file():
                    fail(f"{truth} is not a file", "give the truth CSV")
                files["truth"] = (truth.name, stack.enter_context(truth.open("rb")))
            form = {
                k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
                for k, v in fields.items()
            }
            with err_console.status(f"uploading and importing {path.name}..."):
                response = client.post("/api/v1/datasets", data=form, files=files)
        else:
            # Paths are read by the hub on its host; make relative ones absolute here.
            fields["path"] = os.path.abspath(path.expanduser())
            if truth is not None:
                fields["truth"] = os.path.abspath(truth.expanduser())
            with err_console.status(f"importing {path}..."):
                response = client.post("/api/v1/datasets", json=fields)
        if response.status_code == 422 and "skip_bad" in response.text:
            detail = response.json().get("detail", response.text)
            fail(
                f"hub answered 422: {detail.partition(' (nothing was imported')[0]}",
                "nothing was imported; fix that line, or add --skip-bad to import the others",
            )
        result = checked(response)
    if as_json:
        print_json(result)
        return
    console.print(_dataset_table([result], title="imported"))
    if result.get("skipped_total"):
        skipped = Table(title=f"{result['skipped_total']} bad lines skipped")
        skipped.add_column("where")
        skipped.add_column("reason")
        for s in result["skipped"]:
            skipped.add_row(s["where"], s["reason"])
        console.print(skipped)
        shown = len(result["skipped"])
        if shown < result["skipped_total"]:
            console.print(f"(first {shown} shown)")
    if result.get("ignored_total"):
        ignored = ignored_line(result["ignored_total"], result.get("ignored_files") or [])
        console.print(ignored, markup=False, highlight=False)


IGNORED_NAMED = 10


def ignored_line(total: int, paths: list[str]) -> str:
    """The files an import passed over, by count and name (the first IGNORED_NAMED)."""
    named = ", ".join(paths[:IGNORED_NAMED])
    more = total - min(len(paths), IGNORED_NAMED)
    return (
        f"ignored {total} file{'s' if total != 1 else ''} that "
        f"{'are' if total != 1 else 'is'} not .jpg, .jpeg or .png: {named}"
        + (f" and {more} more (--json lists the first 100)" if more > 0 else "")
    )


@app.command("list")
def list_datasets(
    hub: str = HubOption, token: str | None = TokenOption, as_json: bool = JsonOption
) -> None:
    """List the hub's datasets."""
    with hub_client(hub, token) as client:
        rows = checked(client.get("/api/v1/datasets"))
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("no datasets yet; import one with `recoghub dataset import`")
    else:
        console.print(_dataset_table(rows))


@app.command("show")
def show_dataset(
    dataset_id: Annotated[int, typer.Argument(metavar="ID", help="Dataset id.")],
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one dataset."""
    dataset = hub_answer(hub, token, "GET", f"/api/v1/datasets/{dataset_id}", as_json=as_json)
    if dataset is None:
        return  # printed as JSON
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in dataset.items():
        table.add_row(key, str(value))
    console.print(table)


DatasetArg = Annotated[str, typer.Argument(metavar="DATASET", help="Dataset id or name.")]


def _dataset_id(client: Any, dataset: str) -> int:
    """The id of `dataset` (an id, or a name looked up on the hub)."""
    if dataset.strip().isdigit():
        return int(dataset)
    rows = checked(client.get("/api/v1/datasets"))
    for row in rows:
        if row["name"] == dataset.strip():
            return int(row["id"])
    fail(f"the hub has no dataset named {dataset!r}", "see `recoghub dataset list`")


def _patch(hub: str, token: str | None, dataset: str, body: dict[str, Any]) -> dict[str, Any]:
    with hub_client(hub, token) as client:
        dataset_id = _dataset_id(client, dataset)
        result: dict[str, Any] = checked(client.patch(f"/api/v1/datasets/{dataset_id}", json=body))
    return result


@app.command("rename")
def rename_dataset(
    dataset: DatasetArg,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Rename a dataset (runs keep referring to it by id)."""
    result = _patch(hub, token, dataset, {"name": new_name})
    if as_json:
        print_json(result)
    else:
        console.print(f"dataset {result['id']} is now named {result['name']!r}")


def _set_open(hub: str, token: str | None, dataset: str, open_: bool, as_json: bool) -> None:
    result = _patch(hub, token, dataset, {"open_to_teams": open_})
    if as_json:
        print_json(result)
    elif open_:
        console.print(
            f"dataset {result['id']} ({result['name']}) is open: teams may start dry runs on "
            "it within their daily quota"
        )
    else:
        console.print(f"dataset {result['id']} ({result['name']}) is closed to team dry runs")


@app.command("open")
def open_dataset(
    dataset: DatasetArg,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Let teams start dry runs on this dataset themselves (never shows them its labels)."""
    _set_open(hub, token, dataset, True, as_json)


@app.command("close")
def close_dataset(
    dataset: DatasetArg,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Stop teams starting dry runs on this dataset (their runs so far stay)."""
    _set_open(hub, token, dataset, False, as_json)


@app.command("delete")
def delete_dataset(
    dataset: DatasetArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete a dataset that no run uses, with its images (files other datasets share stay)."""
    with hub_client(hub, token) as client:
        dataset_id = _dataset_id(client, dataset)
        if not yes and not typer.confirm(f"delete dataset {dataset_id} and its images?"):
            fail("not deleted", "pass --yes to delete without asking")
        response = client.delete(f"/api/v1/datasets/{dataset_id}")
        if response.status_code != 204:
            checked(response)
    if as_json:
        print_json({"id": dataset_id, "deleted": True})
    else:
        console.print(f"dataset {dataset_id} deleted")
