"""Pipeline configuration: YAML in, validated pydantic models out, one clear sentence per mistake.

`load_config(path)` reads a pipeline YAML (see `configs/demo.yaml`) into a `PipelineConfig`.
Validation is strict: an unknown key is an error (with a "did you mean" hint), and so is a value
of the wrong type or out of range. Every error names where it is, e.g.
`demo.yaml.sources[1].text_field: expected a string, got 3`.

Each section is a `ConfigModel` (a pydantic model that forbids unknown keys and converts nothing
but integers to floats). Its rules live in its field and model validators, which raise `Invalid`
with the sentence to show; they run when a model is validated from data (`from_dict`,
`load_config`, `model_validate`). A model built or changed in code (`SourceConfig(name=...)`,
`cfg.spark.progress = False`) gets its types checked at once and its rules when the code calls
`validate(where)`. `from_dict` turns pydantic's errors into one `ConfigError` sentence, so a
`ValidationError` never reaches the user.

The training config (`brickyard.training.config`) is built the same way on the same base. `to_dict`
gives the plain-data form of a model (or of a dataclass such as a phase plan), and `config_hash` a
hash of it.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import hashlib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Generic validation
# ---------------------------------------------------------------------------------------------


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    """`X | None` -> X (the only unions a config declares)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return tp


def _model_in(tp: Any) -> Any:
    """The model member of a union of a model and plain values (`Literal[...] | Selection`), else `tp`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(tp) if _is_model(a)]
        if len(models) == 1:
            return models[0]
    return tp


def _untag(cls: type, error: dict) -> dict | None:
    """`error` with the union member tags pydantic puts in its location ('Selection',
    "literal['random','rejected']") taken out, so that places read as the file's keys; None for the
    error of a plain-value member where the value given is a mapping (the model member's errors say
    what is wrong with it)."""
    tp, loc = cls, []
    for part in error["loc"]:
        tp = _unwrap(tp)
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and isinstance(part, str):
            member = next((a for a in typing.get_args(tp) if (a.__name__ if _is_model(a) else "") == part
                           or (typing.get_origin(a) is Literal and part.startswith("literal["))), None)
            if member is not None:
                if typing.get_origin(member) is Literal and isinstance(error.get("input"), dict):
                    return None
                tp = member
                continue
        loc.append(part)
        tp = _annotation_at(tp, (part,))
    return {**error, "loc": tuple(loc)}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp) or _is_model(tp):
        return "a mapping"
    return str(tp)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Invalid(ValueError):
    """A broken config rule, raised by a `ConfigModel` validator. `message` is the sentence after the
    place; `at` extends the place below the validated value (".parts.x", "[1]"), empty for the value."""

    def __init__(self, message: str, at: str = ""):
        super().__init__(message)
        self.message, self.at = message, at


def rules_apply(info: ValidationInfo) -> bool:
    """Whether a validator enforces its rule: yes when the model is validated from data (with a
    validation context, which `from_dict` and `ConfigModel.model_validate` always pass); no while
    code builds or assigns one, whose rules then wait for `validate(where)`."""
    return info.context is not None


class ConfigModel(BaseModel):
    """A config section: unknown keys are refused, types are strict (only an integer becomes a float)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _plain_data(cls, data: Any) -> Any:
        """An empty YAML section (`spark:`) means the defaults; mapping keys are names (`{1: x}`: "1")."""
        if data is None:
            return {}
        if isinstance(data, dict):
            data = dict(data)
            for name, f in cls.model_fields.items():
                if typing.get_origin(_unwrap(f.annotation)) is dict and isinstance(data.get(name), dict):
                    data[name] = {str(k): v for k, v in data[name].items()}
        return data

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        """Pydantic's entry point, with the rules on (a validation context) unless one is given."""
        if kwargs.get("context") is None:
            kwargs["context"] = {}
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Any:
        """The same for JSON text."""
        if kwargs.get("context") is None:
            kwargs["context"] = {}
        return super().model_validate_json(json_data, **kwargs)

    def validate(self, where: str) -> None:  # type: ignore[override]  # pydantic's own is a deprecated v1 classmethod
        """Check this model and everything in it as `load_config` would, naming places from `where`:
        for a config built or changed in code."""
        from_dict(type(self), to_dict(self), where)


def _annotation_at(cls: type, loc: tuple) -> Any:
    """The declared type of the value at pydantic's error location `loc` under model `cls`."""
    tp: Any = cls
    for part in loc:
        tp = _model_in(_unwrap(tp))
        origin = typing.get_origin(tp)
        if _is_model(tp) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return Any
    return _unwrap(tp)


def _place(where: str, loc: tuple) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _check_order(cls: type, error: dict) -> tuple:
    """Sorts pydantic's errors into the order the checks run in a hand-written loader: at each level
    of the config the unknown keys first, then the fields in order (each value in full), then the
    level's own rules. The first error is the one reported."""
    loc, tp, key = error["loc"], cls, []
    rule = isinstance((error.get("ctx") or {}).get("error"), Invalid)
    for i, part in enumerate(loc):
        tp = _model_in(_unwrap(tp))
        last = i == len(loc) - 1
        if _is_model(tp):
            names = list(tp.model_fields)
            if last and error["type"] in ("extra_forbidden", "invalid_key"):
                return (*key, (0, 0))
            if part not in names:
                break
            if last and rule and not _is_model(_model_in(_unwrap(tp.model_fields[part].annotation))):
                return (*key, (2, 0))  # a field validator: a rule of this level
            key.append((1, names.index(part)))
            tp = tp.model_fields[part].annotation
        elif typing.get_origin(tp) in (list, tuple):
            key.append((1, part))
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            key.append((1, 0))  # keys keep the file's order (a stable sort)
            tp = typing.get_args(tp)[1]
        else:
            break
    if rule:
        key.append((2, 0))  # a model validator: after its own fields
    return tuple(key)


def _sentence(cls: type, error: dict, where: str) -> str:
    """One pydantic error as the sentence a user sees."""
    loc, kind = error["loc"], error["type"]
    if kind in ("extra_forbidden", "invalid_key"):
        names = list(_model_in(_annotation_at(cls, loc[:-1])).model_fields)
        key = loc[-1]
        return (f"{_place(where, loc[:-1])}: unknown key {key!r}{_did_you_mean(str(key), names)}; "
                f"allowed: {', '.join(names)}")
    if kind == "missing":
        return f"{_place(where, loc[:-1])}: missing required key {loc[-1]!r}"
    broken = (error.get("ctx") or {}).get("error")
    if isinstance(broken, Invalid):
        return f"{_place(where, loc)}{broken.at}: {broken.message}"
    tp = _annotation_at(cls, loc)
    if tp is Any:
        return f"{_place(where, loc)}: {error['msg']}"
    value = error.get("input")
    hint = _did_you_mean(str(value), [str(a) for a in typing.get_args(tp)]) if typing.get_origin(tp) is Literal else ""
    return f"{_place(where, loc)}: expected {_type_name(tp)}, got {value!r}{hint}"


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build `cls` (a `ConfigModel`) from a plain mapping, checking keys, types and
    rules; the first problem is a `ConfigError` naming its place from `where`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    if _is_model(cls):
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            errors = [u for err in e.errors(include_url=False) if (u := _untag(cls, err)) is not None]
            first = min(errors, key=lambda err: _check_order(cls, err))
            raise ConfigError(_sentence(cls, first, where)) from None
    raise TypeError(f"{cls.__name__} is not a configuration model")


# The `json_schema_extra` of a setting added after lakehouses recorded config hashes: `to_dict`
# leaves it out while it holds its default, so a config that does not use it hashes as before.
ADDED_LATER = {"added_later": True}


def _unset_later(f: Any, value: Any) -> bool:
    return f.json_schema_extra == ADDED_LATER and value == f.default


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config, as recorded in lineage and MLflow (a setting added later
    appears once it is set, see ADDED_LATER)."""
    if isinstance(obj, BaseModel):
        return {name: to_dict(v) for name, f in type(obj).model_fields.items()
                if not _unset_later(f, v := getattr(obj, name))}
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_hash(obj: Any) -> str:
    """A short, stable hash of a config's canonical JSON form (key order does not matter)."""
    blob = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _require_positive(value: int | float | None) -> None:
    """For a model's validators: None (unset) passes."""
    if value is not None and value <= 0:
        raise Invalid(f"must be greater than 0, got {value!r}")


# ---------------------------------------------------------------------------------------------
# The pipeline config
# ---------------------------------------------------------------------------------------------

SourceKind = Literal["jsonl", "parquet", "text", "code", "warc", "sample"]

DEFAULT_DOMAINS = ["web", "code", "books", "docs", "papers", "wiki", "legal", "math", "other"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SourceConfig(ConfigModel):
    """One declared source. `kind` picks the reader; the options below apply where noted."""

    name: str
    kind: SourceKind
    domain: str = "other"  # for `sample`, each part has its own domain
    path: str | None = None  # a file or folder; relative paths are relative to the config file
    include: list[str] = Field(default_factory=list)  # glob patterns on the relative path
    exclude: list[str] = Field(default_factory=list)
    text_field: str = "text"  # jsonl / parquet: the field holding the document
    id_field: str | None = None  # jsonl / parquet: a stable record id, else the line / row number
    license: str | None = None  # code / text: override the licence read from the tree
    # warc: a blocklist file of domains and ~URL substrings (see brickyard.pipelines.sources.web.UrlRules); relative
    # paths are relative to the config file
    url_blocklist: str | None = None
    # text / code: the encoding of the files that are not UTF-8 (a Python codec name: cp1252,
    # latin-1, utf-16-le, shift_jis, ...); UTF-8 files still read as UTF-8, and no other encoding
    # is guessed (see brickyard.pipelines.sources.encodings)
    encoding: str | None = Field(None, json_schema_extra=ADDED_LATER)
    # sample: megabytes to take from each part (0 leaves a part out)
    parts: dict[str, float] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info) and not _NAME.match(v):
            raise Invalid(f"{v!r} must be lower case letters, digits and _ (starting with a letter)")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or not rules_apply(info):
            return v
        name = info.data.get("name", "?")
        try:
            codecs.lookup(v)
            b"\x00\x00\x00\x00".decode(v)
        except LookupError:
            raise Invalid(f"source {name!r}: {v!r} is not a text encoding Python knows; name one such as "
                          "cp1252, latin-1, utf-16-le or shift_jis") from None
        except UnicodeError:
            pass  # a real text codec that cannot read those four bytes
        return v

    @model_validator(mode="after")
    def _options_fit_the_kind(self, info: ValidationInfo) -> SourceConfig:
        if not rules_apply(info):
            return self
        if self.kind == "sample":
            from .sources.sample import PARTS  # local: keeps config free of reader imports

            for part, mb in self.parts.items():
                if part not in PARTS:
                    hint = _did_you_mean(part, list(PARTS))
                    raise Invalid(f"unknown part {part!r}{hint}; parts: {', '.join(PARTS)}", at=".parts")
                if mb < 0:
                    raise Invalid(f"must be 0 or more, got {mb!r}", at=f".parts.{part}")
            if self.path is not None:
                raise Invalid("the sample source reads no path; remove it", at=".path")
        else:
            if not self.path:
                raise Invalid(f"a {self.kind} source needs a 'path'")
            if self.parts:
                raise Invalid("only the sample source has parts", at=".parts")
        if self.url_blocklist is not None and self.kind != "warc":
            raise Invalid("only a warc source has a URL blocklist", at=".url_blocklist")
        if self.encoding is not None and self.kind not in ("text", "code"):
            raise Invalid("only text and code sources take an encoding (JSON Lines are UTF-8, Parquet holds "
                          "strings, web records name their charset); remove it", at=".encoding")
        return self


class IngestSettings(ConfigModel):
    max_doc_bytes: int = 8 * 1024 * 1024  # a larger document goes to quarantine as too_large
    # a compressed file that inflates past this is cut off there (bounds gzip / zstd bombs)
    max_file_bytes: int = 4 * 1024**3
    jsonl_chunk_bytes: int = 64 * 1024 * 1024  # plain JSONL files are split into ranges this big
    batch_rows: int = 1000  # rows per Arrow batch handed back to Spark
    partitions: int | None = None  # read tasks; default: a few per core

    @field_validator("max_doc_bytes", "max_file_bytes", "jsonl_chunk_bytes", "batch_rows", "partitions")
    @classmethod
    def _above_zero(cls, v: int | None, info: ValidationInfo) -> int | None:
        if rules_apply(info):
            _require_positive(v)
        return v


class SparkSettings(ConfigModel):
    master: str = "local[*]"
    remote: str | None = None  # a Spark Connect URL (sc://host:15002); then master is unused
    # the lakehouse's `brickyard serve` server when it is up (auto), only that (server), or a driver of its own (local)
    engine: Literal["auto", "local", "server"] = Field("auto", json_schema_extra=ADDED_LATER)
    # the driver's JVM heap (in local mode it runs every task too). 2g: on 2 cores the whole build ran
    # as fast as with 4g at 0.9 GB of input (313 s against 309 s), and the JVM's peak RSS was 2.9-3.4
    # GB against 5.5 (the throughput collector grows the heap towards its limit); big inputs on big
    # machines want more (docs/configuration.md)
    driver_memory: str = "2g"
    shuffle_partitions: int | None = None  # default: 2 per core, at least 4
    ui: bool = True
    progress: bool = False  # Spark's console progress bar (off: it would interleave with brickyard's stage lines)
    conf: dict[str, str] = Field(default_factory=dict)  # any other spark.* settings

    @field_validator("driver_memory")
    @classmethod
    def _memory_size(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info) and not re.match(r"^\d+[kmgt]?$", v.lower()):
            raise Invalid(f"expected a size like 4g, got {v!r}")
        return v

    @field_validator("shuffle_partitions")
    @classmethod
    def _above_zero(cls, v: int | None, info: ValidationInfo) -> int | None:
        if rules_apply(info):
            _require_positive(v)
        return v


PERMISSIVE_LICENSES = [
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "PSF-2.0", "Unlicense", "CC0-1.0", "Zlib",
]


class CurateSettings(ConfigModel):
    languages: list[str] = Field(default_factory=lambda: ["en"])  # kept text languages (code is exempt)
    min_lang_score: float = 0.65
    # code whose licence is not listed is rejected as license:<id>; NOASSERTION means no licence file
    licenses: list[str] = Field(default_factory=lambda: list(PERMISSIVE_LICENSES))
    redact_pii: bool = True
    rules: dict[str, Any] = Field(default_factory=dict)  # {rule: {min, max, enabled}}, see brickyard.pipelines.text.filters

    @field_validator("min_lang_score")
    @classmethod
    def _score(cls, v: float, info: ValidationInfo) -> float:
        if rules_apply(info) and not 0 <= v <= 1:
            raise Invalid(f"must be between 0 and 1, got {v!r}")
        return v

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not rules_apply(info):
            return v
        from .text.filters import configure

        try:
            configure(v)
        except ConfigError as e:  # "curate.rules.NAME.min: ..." -> at ".NAME.min"
            at, _, message = str(e).removeprefix("curate.rules").partition(": ")
            raise Invalid(message, at=at) from None
        return v


class Selection(ConfigModel):
    """Rows of a catalog table or view: by domain, by an SQL condition, or the whole table."""

    table: str = "silver.documents"  # any table or view with doc_id and text columns
    domains: list[str] = Field(default_factory=list)
    where: str | None = None  # any further Spark SQL condition, e.g. "source = 'wiki'"
    kept_only: bool = True  # on tables with a `keep` column, only rows that passed curation

    @field_validator("table")
    @classmethod
    def _qualified(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info) and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$", v):
            raise Invalid(f"expected schema.table, got {v!r}")
        return v


class QualitySettings(ConfigModel):
    """The fastText quality classifier (see brickyard.pipelines.stages.quality): what it learns from and its tiers."""

    positives: Selection | None = None  # the reference selection; no classifier while unset
    # other curated documents, the rejected ones, or a selection of their own (less any positive)
    negatives: Literal["random", "rejected"] | Selection = "random"
    negatives_per_positive: float = 1.0  # balanced classes by default
    kinds: list[Literal["text", "code"]] = Field(default_factory=lambda: ["text"])  # kinds it scores
    # score thresholds, highest first wins; a document below every threshold gets the lowest tier
    tiers: dict[str, float] = Field(default_factory=lambda: {"high": 0.7, "medium": 0.3, "low": 0.0})
    model_name: str = "brickyard-quality"  # the registered model in the lakehouse's MLflow registry
    max_per_class: int = 20000
    # trained again when a class (positives or negatives) grew or shrank by at least this share since
    # the registered version was trained; 0: on any change of the data (a retrain rescores every row)
    retrain_drift: float = 0.1
    holdout: float = 0.1
    max_chars: int = 20000  # characters of each document the classifier reads
    seed: int = 17  # fixes the sample, the hold-out split and the order of the training file
    dim: int = 32
    train_chunk_words: int = 200  # training examples are chunks of this many words of a document
    epoch: int = 20
    lr: float = 0.5
    word_ngrams: int = 2
    bucket: int = 200000
    min_count: int = 2

    @field_validator("negatives", mode="before")
    @classmethod
    def _negatives(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in ("random", "rejected") or not isinstance(v, str | dict | Selection):
            hint = _did_you_mean(v, ["random", "rejected"]) if isinstance(v, str) else ""
            raise Invalid(f"expected 'random', 'rejected' or a selection (a mapping like positives), got {v!r}{hint}")
        return v

    @field_validator("negatives_per_positive", "max_per_class", "max_chars", "train_chunk_words", "dim", "epoch", "lr",
                     "word_ngrams", "bucket", "min_count")
    @classmethod
    def _above_zero(cls, v: int | float, info: ValidationInfo) -> int | float:
        if rules_apply(info):
            _require_positive(v)
        return v

    @field_validator("holdout", "retrain_drift")
    @classmethod
    def _holdout(cls, v: float, info: ValidationInfo) -> float:
        if rules_apply(info) and not 0 <= v < 1:
            raise Invalid(f"must be at least 0 and below 1, got {v!r}")
        return v

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if not rules_apply(info):
            return v
        if not v:
            raise Invalid("name at least one tier, e.g. {high: 0.7, low: 0.0}")
        for name, low in v.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", name) or name == "unscored":
                raise Invalid(f"{name!r} is not a usable tier name (lower case, not 'unscored')")
            if not 0 <= low <= 1:
                raise Invalid(f"a threshold is a score in [0, 1], got {low!r}", at=f".{name}")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if rules_apply(info) and not v:
            raise Invalid("name at least one kind (text, code)")
        return v

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info) and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", v):
            raise Invalid(f"{v!r} must be letters, digits, '.', '_' or '-'")
        return v

    @model_validator(mode="after")
    def _positives_select_something(self, info: ValidationInfo) -> QualitySettings:
        p = self.positives
        if rules_apply(info) and p is not None and p.table == "silver.documents" and not p.domains and not p.where:
            raise Invalid("selects all of silver.documents; name domains, a where condition or another table",
                          at=".positives")
        return self


def _check_minhash(name: str, value: int | float | None) -> None:
    """One MinHash setting's rule (raises Invalid); None (unset) passes."""
    if value is None:
        return
    if name == "ngram":
        _require_positive(value)
    elif name == "num_perm" and not 16 <= value <= 1024:
        raise Invalid(f"must be between 16 and 1024, got {value!r}")
    elif name == "threshold" and not 0 < value < 1:
        raise Invalid(f"a Jaccard similarity strictly between 0 and 1, got {value!r}")


class MinHashOverride(ConfigModel):
    """A domain's own MinHash settings; what is left unset comes from `dedup`."""

    ngram: int | None = None
    num_perm: int | None = None
    threshold: float | None = None

    @field_validator("ngram", "num_perm", "threshold")
    @classmethod
    def _minhash(cls, v: int | float | None, info: ValidationInfo) -> int | float | None:
        if rules_apply(info):
            _check_minhash(info.field_name, v)
        return v


class ContainmentSettings(ConfigModel):
    """Partial copies: a document whose shingles are mostly inside a larger document (see
    brickyard.pipelines.stages.dedup). Off by default: it reads the text of every gold document on
    each run that has new documents."""

    enabled: bool = False
    threshold: float = 0.8  # C(A in B) = |shingles(A) & shingles(B)| / |shingles(A)| at which A is contained
    ngram: int = 5  # shingles are word n-grams
    max_df: int = 100  # a shingle found in more documents than this is left out of the candidate index
    min_shingles: int = 20  # a document with fewer distinct shingles is never judged contained

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float, info: ValidationInfo) -> float:
        if rules_apply(info) and not 0 < v <= 1:
            raise Invalid(f"a containment above 0 and at most 1, got {v!r}")
        return v

    @field_validator("ngram", "min_shingles")
    @classmethod
    def _positive(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info):
            _require_positive(v)
        return v

    @field_validator("max_df")
    @classmethod
    def _max_df(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info) and v < 2:
            raise Invalid(f"at least 2 (a shingle must be shared to find a pair), got {v!r}")
        return v


class SpanSettings(ConfigModel):
    """Repeated paragraphs and lines across the corpus (see brickyard.pipelines.stages.dedup): the
    first holder in keeper order keeps a span, later copies are cut from the text that goes to gold.
    Off unless `paragraphs` or `lines` is on."""

    paragraphs: bool = False
    lines: bool = False
    min_chars: int = 40  # shorter spans (normalized) are never removed
    min_words: int = 50  # a text document left with fewer words is rejected (code: left empty)
    keep_code_licence_headers: bool = False  # true: code is left as it is (its header included)

    @property
    def enabled(self) -> bool:
        return self.paragraphs or self.lines

    @field_validator("min_chars")
    @classmethod
    def _min_chars(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info):
            _require_positive(v)
        return v

    @field_validator("min_words")
    @classmethod
    def _min_words(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info) and v < 0:
            raise Invalid(f"must be 0 or more, got {v!r}")
        return v


KEEPER_KEYS = ("quality_score", "n_bytes", "curated_at", "lang_score")


class DedupSettings(ConfigModel):
    """Exact and MinHash-LSH near-duplicate detection (see brickyard.pipelines.stages.dedup)."""

    ngram: int = 5  # shingles are word n-grams
    num_perm: int = 128  # signature length
    threshold: float = 0.8  # Jaccard similarity at which two documents are near-duplicates
    seed: int = 1  # seeds the permutations (datasketch's own parameters for this seed)
    domains: dict[str, MinHashOverride] = Field(default_factory=dict)  # e.g. {code: {ngram: 7}}
    # which member of a cluster goes to gold: first key decides, later keys break ties, doc_id last
    keeper: list[str] = Field(default_factory=lambda: ["quality_score desc", "n_bytes desc", "curated_at asc"])
    # candidate pairs (documents sharing an LSH band) count when their Jaccard similarity reaches the
    # threshold: "exact" recomputes it from the two texts' shingles (precision 1), "estimate" takes
    # the signatures' estimate, "none" takes every candidate
    verify: Literal["exact", "estimate", "none"] = "exact"
    # weights of false positives and false negatives in datasketch's search for (bands, rows); the
    # default favours recall, since exact verification removes the false positives
    lsh_weights: list[float] = Field(default_factory=lambda: [0.02, 0.98])
    containment: ContainmentSettings = Field(default_factory=ContainmentSettings)  # partial copies
    spans: SpanSettings = Field(default_factory=SpanSettings)  # repeated paragraphs and lines

    @field_validator("ngram", "num_perm", "threshold")
    @classmethod
    def _minhash(cls, v: int | float, info: ValidationInfo) -> int | float:
        if rules_apply(info):
            _check_minhash(info.field_name, v)
        return v

    @field_validator("keeper")
    @classmethod
    def _keeper(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not rules_apply(info):
            return v
        for i, key in enumerate(v):
            parts = key.split()
            if len(parts) not in (1, 2) or parts[0] not in KEEPER_KEYS or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
                hint = _did_you_mean(parts[0] if parts else "", list(KEEPER_KEYS))
                raise Invalid(f"{key!r} is not 'COLUMN [asc|desc]' with COLUMN one of {', '.join(KEEPER_KEYS)}{hint}",
                              at=f"[{i}]")
        return v

    @field_validator("lsh_weights")
    @classmethod
    def _weights(cls, v: list[float], info: ValidationInfo) -> list[float]:
        if rules_apply(info) and (len(v) != 2 or min(v) < 0 or abs(sum(v) - 1) > 1e-6):
            raise Invalid(f"two weights, false positives then false negatives, at least 0 and adding up to 1, got {v!r}")
        return v

    def scheme(self, domain: str) -> tuple[int, int, float]:
        """(ngram, num_perm, threshold) for a domain."""
        o = self.domains.get(domain) or MinHashOverride()
        return (o.ngram or self.ngram, o.num_perm or self.num_perm,
                o.threshold if o.threshold is not None else self.threshold)


EvalFormat = Literal["jsonl", "parquet", "text", "sample"]
DecontaminateMode = Literal["ngram", "containment"]
EVAL_EXTENSIONS = {  # how an evaluation file's format is told from its name when `format` is left out
    "jsonl": (".jsonl", ".ndjson", ".json"), "parquet": (".parquet",), "text": (".txt", ".text", ".md"),
}


def eval_format_of(name: str) -> str | None:
    """The format an evaluation file's name says (.jsonl, .parquet, .txt, ..., also .gz / .zst), or None."""
    low = name.lower()
    for ext in (".gz", ".zst"):
        low = low.removesuffix(ext)
    return next((fmt for fmt, exts in EVAL_EXTENSIONS.items() if low.endswith(exts)), None)


def _check_decontaminate(name: str, value: int | float | None) -> None:
    """One decontamination setting's rule (raises Invalid); None (unset) passes."""
    if value is None:
        return
    if name in ("ngram", "min_words"):
        _require_positive(value)
    elif name == "containment" and not 0 < value <= 1:
        raise Invalid(f"a share of the item's n-grams, above 0 and at most 1, got {value!r}")


class EvalSetConfig(ConfigModel):
    """One evaluation set whose items training documents must not contain (see
    brickyard.pipelines.stages.decontaminate)."""

    name: str
    path: str | None = None  # a file or a folder; relative paths are relative to the config file
    # jsonl, parquet or text (one item per paragraph); left out: each file's extension says; sample:
    # passages of this machine's text, some of them in the built-in sample source (for the demo)
    format: EvalFormat | None = None
    # jsonl / parquet: the fields that hold an item's text; `a.b` reaches inside a mapping, and a
    # list (of strings, or of mappings with a.b) gives each element as a text of its own
    fields: list[str] = Field(default_factory=list)
    id_field: str | None = None  # jsonl / parquet: a stable item id (else FILE:LINE or FILE#row=N)
    items: int | None = None  # sample: how many passages (40 when unset)
    ngram: int | None = None  # this set's own settings; unset: those of `decontaminate`
    mode: DecontaminateMode | None = None
    containment: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info) and not _NAME.match(v):
            raise Invalid(f"{v!r} must be lower case letters, digits and _ (starting with a letter)")
        return v

    @field_validator("ngram", "containment")
    @classmethod
    def _setting(cls, v: int | float | None, info: ValidationInfo) -> int | float | None:
        if rules_apply(info):
            _check_decontaminate(info.field_name, v)
        return v

    @model_validator(mode="after")
    def _options_fit_the_format(self, info: ValidationInfo) -> EvalSetConfig:
        if not rules_apply(info):
            return self
        if self.format == "sample":
            for key in ("path", "id_field"):
                if getattr(self, key) is not None:
                    raise Invalid(f"the sample evaluation set is built from this machine's text and reads no {key}; remove it", at=f".{key}")
            if self.fields:
                raise Invalid("the sample evaluation set has one field of its own; remove fields", at=".fields")
            if self.items is not None and self.items <= 0:
                raise Invalid(f"must be greater than 0, got {self.items!r}", at=".items")
            return self
        if not self.path:
            raise Invalid("an evaluation set needs a 'path' (a file or a folder), or format: sample")
        if self.items is not None:
            raise Invalid("only the sample evaluation set takes items; remove it", at=".items")
        fmt = self.format or eval_format_of(self.path)
        if fmt == "text":
            for key in ("fields", "id_field"):
                if getattr(self, key):
                    raise Invalid(f"a text evaluation set holds one item per paragraph and has no {key}; remove it", at=f".{key}")
        elif fmt in ("jsonl", "parquet") and not self.fields:
            raise Invalid(f"a {fmt} evaluation set needs 'fields', the fields that hold an item's text (e.g. [question, answer])")
        return self


class DecontaminateSettings(ConfigModel):
    """`brickyard decontaminate` (see brickyard.pipelines.stages.decontaminate): the evaluation sets
    and how a document is found to contain one of their items."""

    eval_sets: list[EvalSetConfig] = Field(default_factory=list)  # none: the stage is skipped
    ngram: int = 13  # words per n-gram
    # ngram: a document that shares one n-gram with an item contains it; containment: a document
    # that holds at least `containment` of the item's n-grams (for short items, with a smaller ngram)
    mode: DecontaminateMode = "ngram"
    containment: float = 0.7
    min_words: int = 8  # a text shorter than ngram words counts whole from this many words; below it, not at all
    reject: bool = True  # curate rejects the documents found (rule `contaminated`); false: record and report only
    # evaluation n-grams up to this many go to every task and are looked up there; more: a Spark join
    broadcast_limit: int = 4_000_000

    @field_validator("ngram", "containment", "min_words")
    @classmethod
    def _setting(cls, v: int | float, info: ValidationInfo) -> int | float:
        if rules_apply(info):
            _check_decontaminate(info.field_name, v)
        return v

    @field_validator("broadcast_limit")
    @classmethod
    def _limit(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info) and v < 0:
            raise Invalid(f"must be 0 (always join) or more, got {v!r}")
        return v

    @field_validator("eval_sets")
    @classmethod
    def _distinct_names(cls, v: list[EvalSetConfig], info: ValidationInfo) -> list[EvalSetConfig]:
        if not rules_apply(info):
            return v
        seen = set()
        for i, s in enumerate(v):
            if s.name in seen:
                raise Invalid(f"{s.name!r} is declared twice", at=f"[{i}].name")
            seen.add(s.name)
        return v

    def scheme(self, s: EvalSetConfig) -> tuple[int, str, float]:
        """(ngram, mode, containment) for an evaluation set."""
        return (s.ngram or self.ngram, s.mode or self.mode,
                s.containment if s.containment is not None else self.containment)


class TokenizeSettings(ConfigModel):
    """`brickyard tokenize` (see brickyard.pipelines.stages.tokenize)."""

    encoding: str = "cl100k_base"  # a tiktoken encoding; cl100k_base (GPT-4's, DBRX's) ships offline
    # the documents tokenized: gold (curated, deduplicated), or bronze (as ingested: a raw-data
    # baseline to measure curation against; its tokens are unredacted and have no quality tier)
    table: Literal["gold.documents", "bronze.documents"] = "gold.documents"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str, info: ValidationInfo) -> str:
        if not rules_apply(info):
            return v
        import tiktoken

        known = set(tiktoken.list_encoding_names())
        if v not in known:
            names = sorted(n for n in known if not n.endswith("_offline"))
            raise Invalid(f"unknown tiktoken encoding {v!r}{_did_you_mean(v, names)}; known: {', '.join(names)}")
        return v


class ExportSettings(ConfigModel):
    """`brickyard export` (see brickyard.pipelines.stages.export): which curriculum `brickyard run` exports, and where."""

    curriculum: str | None = None  # a curriculum YAML, relative to this config file; none: run skips export
    root: str = "exports"  # where exports go, relative to the lakehouse root (or absolute)


class TrainStageSettings(ConfigModel):
    """`brickyard run`'s last stage: a training config run on the export just made."""

    config: str | None = None  # a training YAML (configs/train/*.yaml), relative to this config file; none: no training


class CatalogSettings(ConfigModel):
    owner: str = "data-platform"  # recorded in every table's `brickyard.owner` property


class PipelineConfig(ConfigModel):
    sources: list[SourceConfig] = Field(default_factory=list)
    lakehouse: str = "lakehouse"
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    curate: CurateSettings = Field(default_factory=CurateSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    decontaminate: DecontaminateSettings = Field(default_factory=DecontaminateSettings)
    tokenize: TokenizeSettings = Field(default_factory=TokenizeSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    train: TrainStageSettings = Field(default_factory=TrainStageSettings)
    domains: list[str] = Field(default_factory=lambda: list(DEFAULT_DOMAINS))
    base_dir: str = "."  # where relative paths resolve; set by load_config to the file's folder

    @model_validator(mode="after")
    def _sources_and_domains_agree(self, info: ValidationInfo) -> PipelineConfig:
        if not rules_apply(info):
            return self
        seen = set()
        for i, s in enumerate(self.sources):
            if s.name in seen:
                raise Invalid(f"{s.name!r} is declared twice", at=f".sources[{i}].name")
            seen.add(s.name)
            if s.kind != "sample" and s.domain not in self.domains:
                hint = _did_you_mean(s.domain, self.domains)
                raise Invalid(f"unknown domain {s.domain!r}{hint}; declared domains: {', '.join(self.domains)} "
                              "(add it under 'domains')", at=f".sources[{i}].domain")
            if s.url_blocklist is not None:
                from .sources.web import UrlRules  # local: keeps config free of reader imports

                try:
                    UrlRules.load(self.resolve(s.url_blocklist))
                except ConfigError as e:
                    raise Invalid(str(e), at=f".sources[{i}].url_blocklist") from None
        for d in self.dedup.domains:
            if d not in self.domains:
                hint = _did_you_mean(d, self.domains)
                raise Invalid(f"unknown domain {d!r}{hint}; declared domains: {', '.join(self.domains)}",
                              at=".dedup.domains")
        return self

    def source_path(self, source: SourceConfig) -> Path:
        return self.resolve(source.path or "")

    def resolve(self, path: str) -> Path:
        """A path from the config: absolute as given, else relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (Path(self.base_dir) / p)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r}; declared: {', '.join(s.name for s in self.sources)}")


def read_yaml(path: str | os.PathLike, what: str) -> dict:
    """A YAML file whose top level is a mapping (empty file: {}); `what` names it in errors."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{what} {p} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {p}: expected a mapping at the top level")
    return raw


def load_config(path: str | os.PathLike | None) -> PipelineConfig:
    """Read and validate a pipeline YAML. `None` gives the defaults with no sources."""
    if path is None:
        return PipelineConfig()
    p = Path(path)
    raw = read_yaml(p, "config file")
    raw.setdefault("base_dir", str(p.resolve().parent))
    return from_dict(PipelineConfig, raw, where=p.name)
