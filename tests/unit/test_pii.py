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
