"""The stages of `brickyard run`, in order, and the walk over them.

To add a stage: write its `Stage` class (see `base`) in a module of its own and put it in `STAGES`
where it belongs in the flow, or, from outside the data side (the CLI's training and report
stages), `register` it; it then runs in `brickyard run` and answers to `--until`.
"""

from __future__ import annotations

from .base import Stage, StageContext, StageResult, run_stage
from .curate import Curate
from .decontaminate import Decontaminate
from .dedup import Dedup
from .export import Export
from .ingest import Ingest
from .quality import Quality
from .tokenize import Tokenize

STAGES: list[type[Stage]] = [Ingest, Curate, Decontaminate, Quality, Dedup, Tokenize, Export]

# when a stage succeeds, these run after it: curate applies a newly registered classifier, and
# rejects the documents decontaminate found
FOLLOW_UPS: dict[str, list[type[Stage]]] = {"quality": [Curate], "decontaminate": [Curate]}


def register(cls: type[Stage]) -> type[Stage]:
    """Append a stage to `brickyard run` (after the data stages)."""
    if any(s.name == cls.name for s in STAGES):
        raise ValueError(f"a stage named {cls.name} is already registered")
    STAGES.append(cls)
    return cls


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def run_stages(ctx: StageContext, until: str | None = None) -> list[StageResult]:
    """Walk the registry in order, up to and including `until`. A failing stage raises."""
    chosen = STAGES[: stage_names().index(until) + 1] if until else STAGES
    results = []
    for cls in chosen:
        result = run_stage(cls(), ctx)
        results.append(result)
        if result.status == "succeeded":
            results += [run_stage(follow(), ctx) for follow in FOLLOW_UPS.get(cls.name, [])]
    return results
