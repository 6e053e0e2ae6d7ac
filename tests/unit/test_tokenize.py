"""Token ids: equal to direct tiktoken calls, special-token text encoded as ordinary text, and the
Arrow layout the tokenize job writes."""

from __future__ import annotations

import numpy as np
import pytest
import tiktoken
from brickyard.pipelines.config import TokenizeSettings, from_dict
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.text.tokenizer import encode_documents, encoder

from tests.helpers import STDLIB, real_metadata_texts

EOT = 100257


def test_cl100k_base_loads_offline_with_gpt4_ids():
    enc = encoder("cl100k_base")
    assert enc.eot_token == EOT
    assert enc.encode_ordinary("hello world") == [15339, 1917]


def test_ids_equal_direct_tiktoken_calls_with_end_of_text_after_each_document():
    enc = encoder("cl100k_base")
    texts = real_metadata_texts(5) + [(STDLIB / "json" / "decoder.py").read_text(), "", "ünïcödé ✓ 日本語"]
    flat, offsets = encode_documents(enc, texts)
    assert flat.dtype == np.int32 and offsets[-1] == len(flat)
    for i, text in enumerate(texts):
        assert flat[offsets[i]:offsets[i + 1]].tolist() == enc.encode_ordinary(text) + [EOT]
        # the same ids tiktoken's default encode gives when special tokens are not allowed as such
        assert flat[offsets[i]:offsets[i + 1] - 1].tolist() == enc.encode(text, disallowed_special=())
    # and what the batch call gives, document for document
    assert [flat[offsets[i]:offsets[i + 1] - 1].tolist() for i in range(len(texts))] == enc.encode_ordinary_batch(texts)
    flat, offsets = encode_documents(enc, [])
    assert flat.size == 0 and offsets.tolist() == [0]


def test_text_that_looks_like_a_special_token_is_encoded_as_ordinary_text():
    enc = encoder("cl100k_base")
    text = "A document that mentions <|endoftext|> and <|fim_prefix|> in its prose."
    with pytest.raises(ValueError):  # tiktoken's plain encode refuses it: it would be ambiguous
        enc.encode(text)
    flat, offsets = encode_documents(enc, [text])
    ids = flat.tolist()
    assert ids[-1] == EOT and EOT not in ids[:-1]
    assert not set(ids[:-1]) & enc.special_tokens_set and not set(ids) & {enc.encode_single_token("<|fim_prefix|>")}
    assert enc.decode(ids[:-1]) == text


def test_unknown_encoding_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"tokenize.encoding: unknown tiktoken encoding 'cl100k' \(did you mean 'cl100k_base'\?\)"):
        from_dict(TokenizeSettings, {"encoding": "cl100k"}, "tokenize")


def test_an_encoding_that_would_need_a_download_is_a_clear_error(monkeypatch):
    import brickyard.pipelines.text.tokenizer as tok

    def offline(name):
        raise OSError("network unreachable")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    monkeypatch.setattr(tok, "_ENCODERS", {})
    with pytest.raises(ConfigError, match="could not load 'o200k_base'.*available offline: cl100k_base"):
        tok.encoder("o200k_base")
