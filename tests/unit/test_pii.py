import random

import pytest
from brickyard.pipelines.text.pii import PLACEHOLDERS, entropy, redact

from tests.pii_cases import negatives, positives


def score():
    rng = random.Random(7)
    pos, neg = positives(rng), negatives(rng)
    found, total = {}, {}
    for kind, secret, text in pos:
        out, counts = redact(text)
        total[kind] = total.get(kind, 0) + 1
        if secret not in out and PLACEHOLDERS[kind] in out and counts[kind] >= 1:
            found[kind] = found.get(kind, 0) + 1
    false_pos = sum(redact(t)[1] != dict.fromkeys(PLACEHOLDERS, 0) for t in neg)
    recall = {k: found.get(k, 0) / total[k] for k in total}
    precision = 1 - false_pos / (false_pos + sum(found.values()))
    return recall, precision, false_pos, len(neg)


def test_recall_and_precision_on_the_labelled_set():
    recall, precision, false_pos, n_neg = score()
    print(f"recall {recall}, precision {precision:.4f} ({false_pos} of {n_neg} negatives touched)")
    assert recall["key"] >= 0.99 and recall["email"] >= 0.99 and recall["private_key"] >= 0.99
    assert recall["ip_address"] >= 0.95 and recall["phone"] >= 0.95
    assert precision >= 0.98


def test_placeholders_are_typed_and_counted():
    text = "Mail ann@example.org from 203.0.113.9, key AKIAABCDEFGHIJKLMNOP, call +1 415-555-0132."
    out, counts = redact(text)
    assert out == "Mail <EMAIL> from <IP_ADDRESS>, key <KEY>, call <PHONE>."
    assert counts == {"email": 1, "ip_address": 1, "phone": 1, "key": 1, "private_key": 0}


def test_low_entropy_assignments_and_loopback_stay():
    for keep in ('password = "changeme"', "host = 127.0.0.1", "secret_name = 'primary_database_credentials'"):
        assert redact(keep)[0] == keep


def test_four_part_version_numbers_are_not_addresses():
    for keep in ("Version: 0.10.9.9", "py4j==0.10.9.9", "released as v1.2.3.4", "version 10.0.0.1 fixes it"):
        assert redact(keep)[0] == keep
    assert redact("server at 10.0.0.1 answered")[0] == "server at <IP_ADDRESS> answered"


@pytest.mark.parametrize("s,low,high", [("aaaaaaaa", 0, 0.01), ("abcd", 1.99, 2.01), ("0123456789abcdef", 3.99, 4.01)])
def test_entropy(s, low, high):
    assert low <= entropy(s) <= high


def test_the_gates_change_nothing_on_real_files_and_the_labelled_set():
    """`redact` skips a pattern on a text that lacks what every match of it holds (and starts its
    address and phone scans at a digit): the same output and counts as every pattern over every text,
    on standard-library sources, package READMEs and the labelled cases, and on the letters that
    IGNORECASE folds to ASCII (Kelvin sign, long s, dotted and dotless i)."""
    import sysconfig
    from pathlib import Path

    from tests.helpers import STDLIB, real_metadata_texts

    rng = random.Random(11)
    sources = sorted(STDLIB.rglob("*.py"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in rng.sample(sources, min(400, len(sources)))]
    texts += real_metadata_texts(200)
    texts += [t for _, _, t in positives(random.Random(7))] + negatives(random.Random(7))
    purelib = Path(sysconfig.get_paths()["purelib"])
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(purelib.glob("*/*.py"))[:300]]
    folded = ["api_\u212aey = 'ab12CD34ef56GH78'", "PA\u017f\u017fWORD: Xy9Zq8Wv7Ut6", "CREDENT\u0130AL=aB3dE5gH7jK9mN",
              "apı_key => 'q1W2e3R4t5Y6u7I8'", "no secret here, just :: and 10.0.0.1 and 2001:db8::1"]
    # names with two secret words, dotted and dashed names, a failed candidate before a good one in the
    # same name, matches back to back, assignments across lines, a long run of name characters
    tricky = ["token_secret = 'abc' ; my.api-key.auth=Zx81Qw72Er63Ty54", "auth.token:\n   'Pq7Rs8Tu9Vw0Xy1Z'",
              "x.passwd=short access_key=Ab1Cd2Ef3Gh4Ij5K pwd=Lm6No7Pq8Rs9Tu0V", "a" * 5000 + "token=" + "b7C" * 10,
              "0123456789abcdef" * 2500 + " token=x\nAPI_KEY: 'Mn4Bv5Cx6Zl7Kj8H'",
              "credential-token-secret => \"Qa1Ws2Ed3Rf4Tg5Y\"credential=Uh6Ij7Ok8Pl9Zx0C", "AUTHORIZATION: Bearer9x8y7z6w5v4u"]
    folded += tricky
    changed = 0
    for text in texts + folded:
        want = redact(text, gated=False)
        assert redact(text) == want, text[:200]
        changed += want[0] != text
    assert changed >= 20  # the set exercises the patterns, not only the gates
    for text in folded[:4]:
        assert redact(text)[1]["key"] == 1, text
