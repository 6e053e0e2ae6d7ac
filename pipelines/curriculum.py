"""Curriculum specs: what an export packs (streams) and in what mix training reads them (phases).

A spec is YAML (see `configs/curriculum/`):

    name: dbrx-like
    seq_len: 2048            # a sample is seq_len + 1 tokens: inputs and labels shifted by one
    tokens: 100000000        # the training budget, in trained tokens (seq_len per sample)
    streams:                 # named, disjoint selections of gold.tokens
      text_high: {domains: [web, books, wiki], tiers: [high]}
      code: {domains: [code]}
    phases:                  # in order; each takes a share of the budget and mixes the streams
      - {name: broad, share: 0.9, mix: {text_high: 0.3, text_rest: 0.5, code: 0.2}}
      - {name: anneal, share: 0.1, mix: {text_high: 0.6, code: 0.4}}

Empty `domains`, `tiers` or `sources` select every domain, tier or source (`sources` names the
pipeline's declared sources, e.g. to hold some out of training). Streams may not overlap: a document belongs
to at most one stream, so a stream's samples are its own. `mix` values are token shares. Samples
have a fixed length, so a token share is a sample share: each phase's samples are divided among
its streams by largest remainders, and the realized shares differ from the requested ones by less
than one sample. A phase that needs more samples of a stream than the stream has repeats it, and
the export says so in a warning with the repeat factor; a phase that needs samples of an empty
stream is an error.

The spec's settings change the shards' bytes, so its hash is part of the export's identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .config import ConfigModel, Invalid, _did_you_mean, from_dict, read_yaml, rules_apply
from .errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SHARE_TOLERANCE = 1e-6  # how far shares may be from adding up to 1 (YAML decimals)


def _check_name(v: str) -> None:
    if not _NAME.match(v):
        raise Invalid(f"{v!r} must be lower case letters, digits, '_' or '-'")


class StreamSpec(ConfigModel):
    """Rows of gold.tokens by domain, quality tier and source; an empty list selects all."""

    domains: list[str] = Field(default_factory=list)
    tiers: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)

    def overlaps(self, other: StreamSpec) -> bool:
        def meet(a: list[str], b: list[str]) -> bool:
            return not a or not b or bool(set(a) & set(b))

        return (meet(self.domains, other.domains) and meet(self.tiers, other.tiers)
                and meet(self.sources, other.sources))

    def _selectors(self):
        return [(col, vals) for col, vals in (("domain", self.domains), ("quality_tier", self.tiers), ("source", self.sources)) if vals]

    def condition(self) -> str:
        """The stream's selection in words, as SQL would write it (for messages)."""
        return " AND ".join(f"{col} IN ({', '.join(repr(v) for v in vals)})" for col, vals in self._selectors()) or "true"

    def column(self):
        """The selection as a Spark Column on gold.tokens (values never pass through SQL text)."""
        from functools import reduce

        from pyspark.sql import functions as F

        parts = [F.col(col).isin(list(vals)) for col, vals in self._selectors()]
        return reduce(lambda a, b: a & b, parts) if parts else F.lit(True)


class PhaseSpec(ConfigModel):
    name: str
    share: float  # of the token budget
    mix: dict[str, float]  # stream -> share of the phase's tokens

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info):
            _check_name(v)
        return v

    @field_validator("share")
    @classmethod
    def _share(cls, v: float, info: ValidationInfo) -> float:
        if rules_apply(info) and not 0 < v <= 1:
            raise Invalid(f"a share of the budget in (0, 1], got {v!r}")
        return v

    @field_validator("mix")
    @classmethod
    def _mix(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        if not rules_apply(info):
            return v
        if not v:
            raise Invalid("give at least one stream a share")
        for s, share in v.items():
            if share < 0:
                raise Invalid(f"a share cannot be negative, got {share!r}", at=f".{s}")
        total = sum(v.values())
        if abs(total - 1) > SHARE_TOLERANCE:
            raise Invalid(f"the stream shares add up to {total:g}, not 1")
        return v


class Curriculum(ConfigModel):
    name: str
    seq_len: int
    tokens: int  # budget: trained tokens over all phases
    streams: dict[str, StreamSpec]
    phases: list[PhaseSpec]
    seed: int = 17  # orders the documents of each stream before packing
    doc_boundaries: bool = False  # also store where each document starts in a sample (attention masks)
    shard_bytes: int = 1 << 26  # MDS shard size limit (uncompressed), 64 MiB
    compression: Literal["zstd", "none"] = "zstd"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if rules_apply(info):
            _check_name(v)
        return v

    @field_validator("seq_len")
    @classmethod
    def _seq_len(cls, v: int, info: ValidationInfo) -> int:
        if rules_apply(info) and v < 1:
            raise Invalid(f"must be at least 1, got {v}")
        return v

    @field_validator("tokens")
    @classmethod
    def _budget(cls, v: int, info: ValidationInfo) -> int:
        seq_len = info.data.get("seq_len")  # absent when seq_len itself failed
        if rules_apply(info) and seq_len is not None and v < seq_len:
            raise Invalid(f"the budget ({v}) must hold at least one sample of seq_len {seq_len}")
        return v

    @field_validator("shard_bytes")
    @classmethod
    def _holds_a_sample(cls, v: int, info: ValidationInfo) -> int:
        seq_len = info.data.get("seq_len")
        if rules_apply(info) and seq_len is not None and v < 4 * (seq_len + 1):
            raise Invalid(f"{v} cannot hold one sample of {seq_len + 1} uint32 tokens")
        return v

    @field_validator("streams")
    @classmethod
    def _disjoint_streams(cls, v: dict[str, StreamSpec], info: ValidationInfo) -> dict[str, StreamSpec]:
        if not rules_apply(info):
            return v
        if not v:
            raise Invalid("declare at least one stream, e.g. {code: {domains: [code]}}")
        names = list(v)
        for s in names:
            if not _NAME.match(s):
                raise Invalid(f"{s!r} must be lower case letters, digits, '_' or '-'")
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if v[a].overlaps(v[b]):
                    raise Invalid(f"{a} and {b} overlap (a document could belong to both); "
                                  "give them different domains, tiers or sources")
        return v

    @field_validator("phases")
    @classmethod
    def _some_phase(cls, v: list[PhaseSpec], info: ValidationInfo) -> list[PhaseSpec]:
        if rules_apply(info) and not v:
            raise Invalid("declare at least one phase")
        return v

    @model_validator(mode="after")
    def _phases_fit_the_streams(self, info: ValidationInfo) -> Curriculum:
        if not rules_apply(info):
            return self
        names = list(self.streams)
        seen = set()
        for i, p in enumerate(self.phases):
            if p.name in seen:
                raise Invalid(f"phase {p.name!r} is declared twice", at=f".phases[{i}].name")
            seen.add(p.name)
            for s in p.mix:
                if s not in self.streams:
                    raise Invalid(f"unknown stream {s!r}{_did_you_mean(s, names)}; streams: {', '.join(names)}",
                                  at=f".phases[{i}].mix")
        total = sum(p.share for p in self.phases)
        if abs(total - 1) > SHARE_TOLERANCE:
            raise Invalid(f"the phase shares add up to {total:g}, not 1", at=".phases")
        return self

    @property
    def sample_tokens(self) -> int:
        return self.seq_len + 1

    @property
    def budget_samples(self) -> int:
        return self.tokens // self.seq_len


def load_curriculum(path: str | Path) -> Curriculum:
    return from_dict(Curriculum, read_yaml(path, "curriculum file"), where=Path(path).name)


def largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split `total` integer units in proportion to `weights` (adding up to 1): floors first, then one
    more unit to the largest remainders (ties by name, so the split is deterministic)."""
    exact = {k: total * w for k, w in weights.items()}
    out = {k: int(v) for k, v in exact.items()}
    left = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:left]:
        out[k] += 1
    return out


@dataclass
class PhasePlan:
    name: str
    share: float
    samples: int
    streams: dict[str, dict]  # stream -> {share, samples, proportion, repeat}


def plan_phases(spec: Curriculum, available: dict[str, int]) -> tuple[list[PhasePlan], list[str]]:
    """Samples per phase and per stream, from the budget and each stream's available samples.

    Returns the plans and warnings (streams read more than once). A phase that needs samples of a
    stream with none is an error."""
    phase_samples = largest_remainder(spec.budget_samples, {p.name: p.share for p in spec.phases})
    plans, warnings, used = [], [], {s: 0 for s in spec.streams}
    for p in spec.phases:
        n = phase_samples[p.name]
        alloc = largest_remainder(n, p.mix)
        streams = {}
        for s, k in alloc.items():
            have = available.get(s, 0)
            if k and not have:
                raise ConfigError(f"phase {p.name} needs {k} samples of stream {s}, which has none "
                                  f"(no documents of {spec.streams[s].condition()} with at least {spec.sample_tokens} tokens "
                                  "in gold.tokens); give it a share of 0 or add such data")
            repeat = k / have if have else 0.0
            if repeat > 1:
                warnings.append(f"phase {p.name}: stream {s} has {have:,} samples but the phase takes {k:,}: "
                                f"each repeats {repeat:.2f} times")
            streams[s] = {"share": p.mix[s], "samples": k, "proportion": (k / n) if n else 0.0, "repeat": round(repeat, 4)}
            used[s] += k
        plans.append(PhasePlan(p.name, p.share, n, streams))
    for s, k in used.items():
        have = available.get(s, 0)
        # named once: a phase that alone repeats the stream has its own warning already
        if have and k > have and not any(pl.streams.get(s, {}).get("repeat", 0) > 1 for pl in plans):
            warnings.append(f"stream {s}: the phases together take {k:,} of its {have:,} samples: "
                            f"read {k / have:.2f} times over the run")
    return plans, warnings
