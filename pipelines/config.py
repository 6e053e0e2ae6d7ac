"""Pipeline configuration: YAML in, validated dataclasses out, one clear sentence per mistake.

`load_config(path)` reads a pipeline YAML (see `configs/demo.yaml`) into a `PipelineConfig`.
Validation is strict: an unknown key is an error (with a "did you mean" hint), and so is a value
of the wrong type or out of range. Every error names where it is, e.g.
`sources[1].text_field: expected a string, got 3`.

`from_dict` is generic over dataclasses, so later stages (curate thresholds, curriculum specs,
training runs) declare their settings as dataclasses and get the same checks for free.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Generic validation
# ---------------------------------------------------------------------------------------------


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
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, where)
        for a in inner:  # first that fits
            try:
                return _convert(a, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in inner)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            hint = _did_you_mean(str(value), [str(a) for a in args])
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}{hint}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass `cls` from a plain mapping, checking keys, types and `validate()`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            hint = _did_you_mean(str(key), list(fields))
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(where)
    return obj


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config, as recorded in lineage and MLflow."""
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


def _positive(where: str, name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{where}.{name}: must be greater than 0, got {value!r}")


# ---------------------------------------------------------------------------------------------
# The pipeline config
# ---------------------------------------------------------------------------------------------

SourceKind = Literal["jsonl", "parquet", "text", "code", "warc", "sample"]

DEFAULT_DOMAINS = ["web", "code", "books", "docs", "papers", "wiki", "legal", "math", "other"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass
class SourceConfig:
    """One declared source. `kind` picks the reader; the options below apply where noted."""

    name: str
    kind: SourceKind
    domain: str = "other"  # for `sample`, each part has its own domain
    path: str | None = None  # a file or folder; relative paths are relative to the config file
    include: list[str] = field(default_factory=list)  # glob patterns on the relative path
    exclude: list[str] = field(default_factory=list)
    text_field: str = "text"  # jsonl / parquet: the field holding the document
    id_field: str | None = None  # jsonl / parquet: a stable record id, else the line / row number
    license: str | None = None  # code / text: override the licence read from the tree
    # warc: a blocklist file of domains and ~URL substrings (see brickyard.pipelines.sources.web.UrlRules); relative
    # paths are relative to the config file
    url_blocklist: str | None = None
    # sample: megabytes to take from each part (0 leaves a part out)
    parts: dict[str, float] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"{where}.name: {self.name!r} must be lower case letters, digits and _ "
                "(starting with a letter)"
            )
        if self.kind == "sample":
            from .sources.sample import PARTS  # local: keeps config free of reader imports

            for part, mb in self.parts.items():
                if part not in PARTS:
                    hint = _did_you_mean(part, list(PARTS))
                    raise ConfigError(
                        f"{where}.parts: unknown part {part!r}{hint}; parts: {', '.join(PARTS)}"
                    )
                if mb < 0:
                    raise ConfigError(f"{where}.parts.{part}: must be 0 or more, got {mb!r}")
            if self.path is not None:
                raise ConfigError(f"{where}.path: the sample source reads no path; remove it")
        else:
            if not self.path:
                raise ConfigError(f"{where}: a {self.kind} source needs a 'path'")
            if self.parts:
                raise ConfigError(f"{where}.parts: only the sample source has parts")
        if self.url_blocklist is not None and self.kind != "warc":
            raise ConfigError(f"{where}.url_blocklist: only a warc source has a URL blocklist")


@dataclass
class IngestSettings:
    max_doc_bytes: int = 8 * 1024 * 1024  # a larger document goes to quarantine as too_large
    # a compressed file that inflates past this is cut off there (bounds gzip / zstd bombs)
    max_file_bytes: int = 4 * 1024**3
    jsonl_chunk_bytes: int = 64 * 1024 * 1024  # plain JSONL files are split into ranges this big
    batch_rows: int = 1000  # rows per Arrow batch handed back to Spark
    partitions: int | None = None  # read tasks; default: a few per core

    def validate(self, where: str) -> None:
        for name in ("max_doc_bytes", "max_file_bytes", "jsonl_chunk_bytes", "batch_rows", "partitions"):
            _positive(where, name, getattr(self, name))


@dataclass
class SparkSettings:
    master: str = "local[*]"
    remote: str | None = None  # a Spark Connect URL (sc://host:15002); then master is unused
    driver_memory: str = "4g"
    shuffle_partitions: int | None = None  # default: 2 per core, at least 4
    ui: bool = True
    progress: bool = False  # Spark's console progress bar (off: it would interleave with brickyard's stage lines)
    conf: dict[str, str] = field(default_factory=dict)  # any other spark.* settings

    def validate(self, where: str) -> None:
        if not re.match(r"^\d+[kmgt]?$", self.driver_memory.lower()):
            raise ConfigError(f"{where}.driver_memory: expected a size like 4g, got {self.driver_memory!r}")
        _positive(where, "shuffle_partitions", self.shuffle_partitions)


PERMISSIVE_LICENSES = [
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "PSF-2.0", "Unlicense", "CC0-1.0", "Zlib",
]


@dataclass
class CurateSettings:
    languages: list[str] = field(default_factory=lambda: ["en"])  # kept text languages (code is exempt)
    min_lang_score: float = 0.65
    # code whose licence is not listed is rejected as license:<id>; NOASSERTION means no licence file
    licenses: list[str] = field(default_factory=lambda: list(PERMISSIVE_LICENSES))
    redact_pii: bool = True
    rules: dict[str, Any] = field(default_factory=dict)  # {rule: {min, max, enabled}}, see brickyard.pipelines.text.filters

    def validate(self, where: str) -> None:
        if not 0 <= self.min_lang_score <= 1:
            raise ConfigError(f"{where}.min_lang_score: must be between 0 and 1, got {self.min_lang_score!r}")
        from .text.filters import configure

        try:
            configure(self.rules)
        except ConfigError as e:
            raise ConfigError(f"{where}.{str(e).removeprefix('curate.')}") from None


@dataclass
class Selection:
    """Rows of a catalog table or view: by domain, by an SQL condition, or the whole table."""

    table: str = "silver.documents"  # any table or view with doc_id and text columns
    domains: list[str] = field(default_factory=list)
    where: str | None = None  # any further Spark SQL condition, e.g. "source = 'wiki'"
    kept_only: bool = True  # on tables with a `keep` column, only rows that passed curation

    def validate(self, where: str) -> None:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$", self.table):
            raise ConfigError(f"{where}.table: expected schema.table, got {self.table!r}")


@dataclass
class QualitySettings:
    """The fastText quality classifier (see brickyard.pipelines.stages.quality): what it learns from and its tiers."""

    positives: Selection | None = None  # the reference selection; no classifier while unset
    negatives: Literal["random", "rejected"] = "random"  # other curated documents, or the rejected ones
    negatives_per_positive: float = 1.0  # balanced classes by default
    kinds: list[Literal["text", "code"]] = field(default_factory=lambda: ["text"])  # kinds it scores
    # score thresholds, highest first wins; a document below every threshold gets the lowest tier
    tiers: dict[str, float] = field(default_factory=lambda: {"high": 0.7, "medium": 0.3, "low": 0.0})
    model_name: str = "brickyard-quality"  # the registered model in the lakehouse's MLflow registry
    max_per_class: int = 20000
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

    def validate(self, where: str) -> None:
        for name in ("negatives_per_positive", "max_per_class", "max_chars", "train_chunk_words", "dim", "epoch", "lr", "word_ngrams", "bucket", "min_count"):
            _positive(where, name, getattr(self, name))
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"{where}.holdout: must be at least 0 and below 1, got {self.holdout!r}")
        if not self.tiers:
            raise ConfigError(f"{where}.tiers: name at least one tier, e.g. {{high: 0.7, low: 0.0}}")
        for name, low in self.tiers.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", name) or name == "unscored":
                raise ConfigError(f"{where}.tiers: {name!r} is not a usable tier name (lower case, not 'unscored')")
            if not 0 <= low <= 1:
                raise ConfigError(f"{where}.tiers.{name}: a threshold is a score in [0, 1], got {low!r}")
        if not self.kinds:
            raise ConfigError(f"{where}.kinds: name at least one kind (text, code)")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", self.model_name):
            raise ConfigError(f"{where}.model_name: {self.model_name!r} must be letters, digits, '.', '_' or '-'")
        p = self.positives
        if p is not None and p.table == "silver.documents" and not p.domains and not p.where:
            raise ConfigError(f"{where}.positives: selects all of silver.documents; name domains, a where condition or another table")


@dataclass
class MinHashOverride:
    """A domain's own MinHash settings; what is left unset comes from `dedup`."""

    ngram: int | None = None
    num_perm: int | None = None
    threshold: float | None = None

    def validate(self, where: str) -> None:
        _check_minhash(where, self.ngram, self.num_perm, self.threshold)


def _check_minhash(where: str, ngram: int | None, num_perm: int | None, threshold: float | None) -> None:
    _positive(where, "ngram", ngram)
    if num_perm is not None and not 16 <= num_perm <= 1024:
        raise ConfigError(f"{where}.num_perm: must be between 16 and 1024, got {num_perm!r}")
    if threshold is not None and not 0 < threshold < 1:
        raise ConfigError(f"{where}.threshold: a Jaccard similarity strictly between 0 and 1, got {threshold!r}")


KEEPER_KEYS = ("quality_score", "n_bytes", "curated_at", "lang_score")


@dataclass
class DedupSettings:
    """Exact and MinHash-LSH near-duplicate detection (see brickyard.pipelines.stages.dedup)."""

    ngram: int = 5  # shingles are word n-grams
    num_perm: int = 128  # signature length
    threshold: float = 0.8  # Jaccard similarity at which two documents are near-duplicates
    seed: int = 1  # seeds the permutations (datasketch's own parameters for this seed)
    domains: dict[str, MinHashOverride] = field(default_factory=dict)  # e.g. {code: {ngram: 7}}
    # which member of a cluster goes to gold: first key decides, later keys break ties, doc_id last
    keeper: list[str] = field(default_factory=lambda: ["quality_score desc", "n_bytes desc", "curated_at asc"])
    # candidate pairs (documents sharing an LSH band) count when their Jaccard similarity reaches the
    # threshold: "exact" recomputes it from the two texts' shingles (precision 1), "estimate" takes
    # the signatures' estimate, "none" takes every candidate
    verify: Literal["exact", "estimate", "none"] = "exact"
    # weights of false positives and false negatives in datasketch's search for (bands, rows); the
    # default favours recall, since exact verification removes the false positives
    lsh_weights: list[float] = field(default_factory=lambda: [0.02, 0.98])

    def validate(self, where: str) -> None:
        _check_minhash(where, self.ngram, self.num_perm, self.threshold)
        w = self.lsh_weights
        if len(w) != 2 or min(w) < 0 or abs(sum(w) - 1) > 1e-6:
            raise ConfigError(f"{where}.lsh_weights: two weights, false positives then false negatives, "
                              f"at least 0 and adding up to 1, got {w!r}")
        for i, key in enumerate(self.keeper):
            parts = key.split()
            if len(parts) not in (1, 2) or parts[0] not in KEEPER_KEYS or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
                hint = _did_you_mean(parts[0] if parts else "", list(KEEPER_KEYS))
                raise ConfigError(f"{where}.keeper[{i}]: {key!r} is not 'COLUMN [asc|desc]' with COLUMN one of "
                                  f"{', '.join(KEEPER_KEYS)}{hint}")

    def scheme(self, domain: str) -> tuple[int, int, float]:
        """(ngram, num_perm, threshold) for a domain."""
        o = self.domains.get(domain) or MinHashOverride()
        return (o.ngram or self.ngram, o.num_perm or self.num_perm,
                o.threshold if o.threshold is not None else self.threshold)


@dataclass
class TokenizeSettings:
    """`brickyard tokenize` (see brickyard.pipelines.stages.tokenize)."""

    encoding: str = "cl100k_base"  # a tiktoken encoding; cl100k_base (GPT-4's, DBRX's) ships offline
    # the documents tokenized: gold (curated, deduplicated), or bronze (as ingested: a raw-data
    # baseline to measure curation against; its tokens are unredacted and have no quality tier)
    table: Literal["gold.documents", "bronze.documents"] = "gold.documents"

    def validate(self, where: str) -> None:
        import tiktoken

        known = set(tiktoken.list_encoding_names())
        if self.encoding not in known:
            names = sorted(n for n in known if not n.endswith("_offline"))
            raise ConfigError(f"{where}.encoding: unknown tiktoken encoding {self.encoding!r}"
                              f"{_did_you_mean(self.encoding, names)}; known: {', '.join(names)}")


@dataclass
class ExportSettings:
    """`brickyard export` (see brickyard.pipelines.stages.export): which curriculum `brickyard run` exports, and where."""

    curriculum: str | None = None  # a curriculum YAML, relative to this config file; none: run skips export
    root: str = "exports"  # where exports go, relative to the lakehouse root (or absolute)


@dataclass
class TrainStageSettings:
    """`brickyard run`'s last stage: a training config run on the export just made."""

    config: str | None = None  # a training YAML (configs/train/*.yaml), relative to this config file; none: no training


@dataclass
class CatalogSettings:
    owner: str = "data-platform"  # recorded in every table's `brickyard.owner` property


@dataclass
class PipelineConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    lakehouse: str = "lakehouse"
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    curate: CurateSettings = field(default_factory=CurateSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    tokenize: TokenizeSettings = field(default_factory=TokenizeSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    train: TrainStageSettings = field(default_factory=TrainStageSettings)
    domains: list[str] = field(default_factory=lambda: list(DEFAULT_DOMAINS))
    base_dir: str = "."  # where relative paths resolve; set by load_config to the file's folder

    def validate(self, where: str) -> None:
        seen = set()
        for i, s in enumerate(self.sources):
            if s.name in seen:
                raise ConfigError(f"{where}.sources[{i}].name: {s.name!r} is declared twice")
            seen.add(s.name)
            if s.kind != "sample" and s.domain not in self.domains:
                hint = _did_you_mean(s.domain, self.domains)
                raise ConfigError(
                    f"{where}.sources[{i}].domain: unknown domain {s.domain!r}{hint}; "
                    f"declared domains: {', '.join(self.domains)} (add it under 'domains')"
                )
            if s.url_blocklist is not None:
                from .sources.web import UrlRules  # local: keeps config free of reader imports

                try:
                    UrlRules.load(self.resolve(s.url_blocklist))
                except ConfigError as e:
                    raise ConfigError(f"{where}.sources[{i}].url_blocklist: {e}") from None
        for d in self.dedup.domains:
            if d not in self.domains:
                hint = _did_you_mean(d, self.domains)
                raise ConfigError(f"{where}.dedup.domains: unknown domain {d!r}{hint}; declared domains: {', '.join(self.domains)}")

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
