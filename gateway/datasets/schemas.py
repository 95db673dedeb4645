"""API shapes of datasets: what an import asks for, and what the hub answers."""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.config import JsonDict

from gateway.datasets.importers import TsvColumns
from gateway.wire import Name, UtcDateTime

DatasetFormat = Literal["clickture", "tsv", "folder", "matching"]
TSV_OPTIONS = ("key_column", "label_column", "label_columns", "image_column", "label_separator")


# The column rules of a tsv import, for the schema (`_options_fit_format` holds the hub
# to them): key_column, image_column and a label column (label_column or a non-empty
# label_columns) are needed, the image column apart from the others; the tsv options and
# `header` apply to tsv only, `truth` to matching only.
_TSV_NEEDS: JsonDict = {
    "if": {"properties": {"format": {"const": "tsv"}}, "required": ["format"]},
    "then": {
        "required": ["key_column", "image_column"],
        "properties": {"key_column": {"type": "integer"}, "image_column": {"type": "integer"}},
        "anyOf": [
            {"required": ["label_column"], "properties": {"label_column": {"type": "integer"}}},
            {
                "required": ["label_columns"],
                "properties": {"label_columns": {"type": "array", "minItems": 1}},
            },
        ],
    },
}


class DatasetCreate(BaseModel):
    """An import request: a JSON body, or the same fields as multipart form data.

    `path` (and `truth`) name files on the hub host; an upload sends them as the
    `file` (and `truth`) parts instead.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [_TSV_NEEDS]})

    name: Name
    format: DatasetFormat
    path: str | None = Field(default=None, min_length=1)
    truth: str | None = Field(
        default=None, min_length=1, description="matching: the query_id,reference_id CSV"
    )
    key_column: int | None = Field(default=None, ge=0, description="tsv: 0-based")
    label_column: int | None = Field(default=None, ge=0, description="tsv: one label column")
    label_columns: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, min_length=1, description="tsv: several label columns"
    )
    image_column: int | None = Field(default=None, ge=0, description="tsv: base64 image")
    label_separator: str | None = Field(
        default=None, min_length=1, description="tsv: split label cells at this text"
    )
    header: StrictBool = Field(default=False, description="tsv: the first line names the columns")
    skip_bad: StrictBool = Field(default=False, description="skip bad lines instead of failing")

    @model_validator(mode="after")
    def _options_fit_format(self) -> Self:
        if self.format != "tsv":
            given = [o for o in (*TSV_OPTIONS, "header") if getattr(self, o)]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to format tsv")
        if self.format != "matching" and self.truth is not None:
            raise ValueError("truth only applies to format matching")
        if self.format == "tsv":
            missing = [
                o
                for o, value in (
                    ("key_column", self.key_column),
                    ("label_column", self.label_column is not None or self.label_columns),
                    ("image_column", self.image_column),
                )
                if value is None or value is False
            ]
            if missing:
                raise ValueError(f"format tsv needs {', '.join(missing)}")
            columns = self.tsv_columns()
            if columns.image == columns.key or columns.image in columns.labels:
                raise ValueError("image_column must differ from key_column and label columns")
        return self

    def tsv_columns(self) -> TsvColumns:
        """The column map of a tsv import (call only for format tsv)."""
        labels = list(self.label_columns or [])
        if self.label_column is not None and self.label_column not in labels:
            labels.insert(0, self.label_column)
        if self.key_column is None or self.image_column is None or not labels:
            raise ValueError("format tsv needs key_column, label_column and image_column")
        return TsvColumns(
            key=self.key_column,
            labels=tuple(labels),
            image=self.image_column,
            label_separator=self.label_separator,
            header=self.header,
        )


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    format: str
    kind: str
    images: int
    labels: int
    open_to_teams: bool = False
    created_at: UtcDateTime


class DatasetForTeams(BaseModel):
    """What a provider sees of a dataset open to team dry runs: never paths or labels."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    images: int


class DatasetUpdate(BaseModel):
    """`PATCH /api/v1/datasets/{id}`: rename, and open or close to team dry runs."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    open_to_teams: StrictBool | None = None


class SkippedLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line: int
    where: str
    reason: str


class DatasetImported(DatasetRead):
    """The answer to an import: the dataset, and the bad lines skipped (first 100)."""

    skipped: list[SkippedLine] = []
    skipped_total: int = 0
    ignored_files: list[str] = Field(
        default=[],
        description="Files of a folder or archive that are not .jpg, .jpeg or .png (.webp, "
        ".bmp, a README...), not imported: their paths, the first 100.",
    )
    ignored_total: int = Field(default=0, description="How many such files there were.")
