"""A labelled PII test set of our own making: secrets and personal data in realistic contexts
(prose, code, config, logs), and look-alikes that must stay. Seeded, so it is the same each run."""

from __future__ import annotations

import random
import string

ALNUM = string.ascii_letters + string.digits


def _r(rng, n, alphabet=ALNUM):
    return "".join(rng.choice(alphabet) for _ in range(n))


def positives(rng: random.Random, n: int = 200) -> list[tuple[str, str, str]]:
    """(kind, secret, text containing it)."""
    out = []
    tlds = ["com", "org", "de", "io", "co.uk", "fr", "net", "edu"]
    for _ in range(n):
        user = rng.choice([_r(rng, rng.randint(3, 10), string.ascii_lowercase), f"{_r(rng, 5, string.ascii_lowercase)}.{_r(rng, 6, string.ascii_lowercase)}",
                           f"{_r(rng, 4, string.ascii_lowercase)}+{_r(rng, 3, string.ascii_lowercase)}", f"{_r(rng, 6, string.ascii_lowercase)}{rng.randint(1, 99)}"])
        email = f"{user}@{_r(rng, rng.randint(3, 9), string.ascii_lowercase)}.{rng.choice(tlds)}"
        ctx = rng.choice(["Contact me at {} for details.", "# Author: Jane Roe <{}>", '"email": "{}",', "mailto:{}", "From: {}\nSubject: hi", "reach {}."])
        out.append(("email", email, ctx.format(email)))

        key = rng.choice([
            "AKIA" + _r(rng, 16, string.ascii_uppercase + string.digits),
            "ghp_" + _r(rng, 36), "gho_" + _r(rng, 36), "xoxb-" + "-".join(_r(rng, 12, string.digits) for _ in range(2)) + "-" + _r(rng, 24),
            "AIza" + _r(rng, 35, ALNUM + "-_"), "sk_live_" + _r(rng, 24), "sk-" + _r(rng, 48), "glpat-" + _r(rng, 20),
            "eyJ" + _r(rng, 20, ALNUM + "-_") + ".eyJ" + _r(rng, 30, ALNUM + "-_") + "." + _r(rng, 43, ALNUM + "-_"),
        ])
        ctx = rng.choice(["AWS_ACCESS_KEY_ID={}", 'client = Client(token="{}")', "Authorization: Bearer {}", "export GITHUB_TOKEN={}", "key: {}", "use {} to log in"])
        out.append(("key", key, ctx.format(key)))

        value = _r(rng, rng.randint(16, 40), ALNUM + "_-") + str(rng.randint(0, 9))
        name = rng.choice(["api_key", "API_KEY", "secret", "client_secret", "password", "db_password", "auth_token", "SECRET_KEY", "access_key"])
        ctx = rng.choice(['{} = "{}"', "{}: {}", "{}={}", "'{}' => '{}'", '"{}": "{}"'])
        out.append(("key", value, ctx.format(name, value)))

        body = "\n".join(_r(rng, 64, ALNUM + "+/") for _ in range(rng.randint(3, 8)))
        kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        pem = f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"
        out.append(("private_key", body.split("\n")[0], f"key = '''\n{pem}\n'''"))

        ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        if ip.startswith("127."):
            ip = "8" + ip[3:]
        ctx = rng.choice(["Connected from {} at noon.", "server {};", "ping {}", "host={}:8080"])
        out.append(("ip_address", ip, ctx.format(ip)))
        ip6 = ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))
        out.append(("ip_address", ip6, f"listen [{ip6}]:443;"))

        phone = rng.choice([
            f"+1 {rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"030 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+49 89 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        ])
        ctx = rng.choice(["Call {} after five.", "Tel: {}", "phone = '{}'", "Fax {}."])
        out.append(("phone", phone, ctx.format(phone)))
    return out


def negatives(rng: random.Random, n: int = 200) -> list[str]:
    """Texts with nothing to redact, though they look a little like it."""
    out = []
    for _ in range(n):
        sha = _r(rng, 40, "0123456789abcdef")
        out += [
            f"numpy {rng.randint(1, 2)}.{rng.randint(0, 30)}.{rng.randint(0, 9)} was released.",
            f"commit {sha}",
            f"Merged on {rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} by the team.",
            "The server listens on 127.0.0.1 and 0.0.0.0 by default, and ::1 too.",
            f"secret_name = \"database_primary_credentials\"  # {rng.randint(1, 99)} items",
            "password = os.environ['DB_PASSWORD']",
            f"We sold {rng.randint(10, 99)} 000 copies in {rng.randint(1990, 2020)}.",
            "Write to the author at the usual address, not by e-mail.",
            f"user@localhost is not an address; neither is a@b nor x@{rng.randint(1, 9)}.",
            f"token_count = {rng.randint(100, 999999)}",
        ]
    return out
