"""Curation filters: decisions over signals. A rule names its signal and its bound.

Rules are checked in the order of `DEFAULT_RULES` (cheap, decisive page rules first, then Gopher,
C4, FineWeb, then code). A document's `reject_reason` is the first rule it fails; all the rules
it fails are kept too. Defaults are the published values; config can change any bound or turn a
rule off, and an unknown rule name or a bound of the wrong kind is refused with one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ConfigError


@dataclass(frozen=True)
class Rule:
    name: str
    signal: str
    min: float | None = None  # the signal must be >= min
    max: float | None = None  # the signal must be <= max
    applies_to: str = "text"  # text / code
    enabled: bool = True

    def passes(self, value: float) -> bool:
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)


_GOPHER_QUALITY = [
    Rule("gopher_min_words", "n_words", min=50),
    Rule("gopher_max_words", "n_words", max=100_000),
    Rule("gopher_mean_word_length", "mean_word_length", min=3, max=10),
    Rule("gopher_symbol_word_ratio", "symbol_word_ratio", max=0.1),
    Rule("gopher_bullet_lines", "bullet_lines_frac", max=0.9),
    Rule("gopher_ellipsis_lines", "ellipsis_lines_frac", max=0.3),
    Rule("gopher_alpha_words", "alpha_words_frac", min=0.8),
    Rule("gopher_stop_words", "stop_words", min=2),
]
_GOPHER_REPETITION = [
    Rule("gopher_dup_lines", "dup_line_frac", max=0.30),
    Rule("gopher_dup_paragraphs", "dup_para_frac", max=0.30),
    Rule("gopher_dup_line_chars", "dup_line_char_frac", max=0.20),
    Rule("gopher_dup_paragraph_chars", "dup_para_char_frac", max=0.20),
    Rule("gopher_top_2gram", "top_2gram_char_frac", max=0.20),
    Rule("gopher_top_3gram", "top_3gram_char_frac", max=0.18),
    Rule("gopher_top_4gram", "top_4gram_char_frac", max=0.16),
    *[Rule(f"gopher_dup_{n}gram", f"dup_{n}gram_char_frac", max=round(0.15 - 0.01 * (n - 5), 2)) for n in range(5, 11)],
]
_C4 = [
    Rule("c4_lorem_ipsum", "c4_lorem_ipsum", max=0),
    Rule("c4_curly_brace", "c4_curly_brace", max=0),
    Rule("c4_min_sentences", "c4_sentences", min=5),
    Rule("c4_javascript_lines", "c4_javascript_line_frac", max=0.5, enabled=False),  # C4 drops such lines
    Rule("c4_policy_lines", "c4_policy_line_frac", max=0.5, enabled=False),
]
_FINEWEB = [
    Rule("fineweb_line_punct", "fw_line_punct_frac", min=0.12),
    Rule("fineweb_short_lines", "fw_short_line_frac", max=0.67),
    Rule("fineweb_char_dup", "fw_char_dup_frac", max=0.01),
    Rule("fineweb_newline_ratio", "fw_newline_word_ratio", max=0.3),
]
_CODE = [
    Rule("code_max_line_length", "code_max_line_length", max=1000, applies_to="code"),
    Rule("code_mean_line_length", "code_mean_line_length", max=100, applies_to="code"),
    Rule("code_alnum_frac", "code_alnum_frac", min=0.25, applies_to="code"),
    Rule("code_data_file", "code_is_data", max=0, applies_to="code"),
    Rule("code_minified", "code_is_minified", max=0, applies_to="code"),
]

DEFAULT_RULES: tuple[Rule, ...] = tuple(_C4[:2] + _GOPHER_QUALITY + _GOPHER_REPETITION + _C4[2:] + _FINEWEB + _CODE)

# A document found to contain an item of an evaluation set (silver.contamination, written by the
# decontaminate stage). It is not a bound on a signal: curate sets it from that table, for text and
# code alike, and it comes last in the order, after every rule above, so a document that another
# rule rejects keeps that rule as its reason and lists this one among its failed rules.
CONTAMINATED = "contaminated"


def configure(overrides: dict[str, dict] | None) -> tuple[Rule, ...]:
    """Apply config overrides: {rule: {min: .., max: .., enabled: ..}}."""
    rules = {r.name: r for r in DEFAULT_RULES}
    for name, change in (overrides or {}).items():
        if name not in rules:
            import difflib

            close = difflib.get_close_matches(name, list(rules), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"curate.rules: unknown rule {name!r}{hint}")
        if not isinstance(change, dict) or set(change) - {"min", "max", "enabled"}:
            raise ConfigError(f"curate.rules.{name}: expected a mapping of min, max and enabled, got {change!r}")
        for bound in ("min", "max"):
            v = change.get(bound)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ConfigError(f"curate.rules.{name}.{bound}: expected a number, got {v!r}")
        if "enabled" in change and not isinstance(change["enabled"], bool):
            raise ConfigError(f"curate.rules.{name}.enabled: expected true or false, got {change['enabled']!r}")
        rules[name] = replace(rules[name], **change)
        r = rules[name]
        if r.min is not None and r.max is not None and r.min > r.max:
            raise ConfigError(f"curate.rules.{name}: min {r.min} is above max {r.max}")
    return tuple(rules[r.name] for r in DEFAULT_RULES)


def evaluate(signals: dict[str, float], kind: str, rules: tuple[Rule, ...] = DEFAULT_RULES) -> list[str]:
    """Names of the rules this document fails, in rule order (empty: keep it)."""
    return [
        r.name for r in rules
        if r.enabled and r.applies_to == kind and r.signal in signals and not r.passes(signals[r.signal])
    ]
