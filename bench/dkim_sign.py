"""What DKIM signing costs per email: dkimpy's own ``dkim.sign`` (the key parsed and the RSA signature
computed in pure Python every time, what the send path did before) against ``outbound.sending.sign``
(the key parsed once by OpenSSL, the signature made by it; everything else dkimpy's).

    python bench/dkim_sign.py [--emails 300]

Builds each email the way the send path does (``drafting.send.build_email``, a follow-up with its
one-click unsubscribe) with a fresh 2,048-bit key, signs it both ways, checks both signatures verify
with dkimpy, and prints per-email milliseconds (wall and CPU). Writes bench/results/dkim.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dkim  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from config import Settings  # noqa: E402
from drafting.send import Outgoing, build_email  # noqa: E402
from outbound import sending  # noqa: E402


def _per_email(fn, n: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return {"wall_ms": round((time.perf_counter() - started) / n * 1000, 2),
            "cpu_ms": round((time.process_time() - cpu) / n * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=300)
    n = parser.parse_args().emails
    folder = Path(tempfile.mkdtemp(prefix="mailroom-dkim-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    (folder / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    settings = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(folder), "MAILROOM_DKIM_KEY": str(folder / "dkim.pem"),
                                  "MAILROOM_DKIM_SELECTOR": "bench", "MAILROOM_MAIL_FROM": "office@example.gov"})
    unsigned = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(folder), "MAILROOM_MAIL_FROM": "office@example.gov"})
    body = "Dear Dana,\n\nThank you for writing about the river crossing.\n\n" + "A paragraph of the letter. " * 60

    def letter(i: int) -> Outgoing:
        return Outgoing(f"person{i}@example.org", "Following up: the river crossing", body,
                        f"<mailroom.{i}@example.gov>", None, i + 1, True)

    signed_key = sending.dkim_key(settings)
    assert signed_key is not None
    include = [h for h in sending.SIGNED_HEADERS]

    def before(i: int) -> None:  # what the send path did: build, flatten, dkimpy signs from the PEM
        email = build_email(letter(i), unsigned)
        data = sending.wire_bytes(email, "bounces@example.gov", [f"person{i}@example.org"])
        present = {name.lower().encode() for name in email}
        dkim.sign(data, signed_key.selector, signed_key.domain, signed_key.private_key,
                  canonicalize=(b"relaxed", b"relaxed"), include_headers=[h for h in include if h in present])

    def after(i: int) -> None:
        build_email(letter(i), settings)

    def build_only(i: int) -> None:
        build_email(letter(i), unsigned)

    after(0)  # parse the key once, as the first letter of a worker does
    check = build_email(letter(1), settings)
    verified = dkim.verify(sending.wire_bytes(check, "bounces@example.gov", ["person1@example.org"]),
                           dnsfunc=lambda name, timeout=5: record)
    result = {"emails": n, "key_bits": 2048, "build_only": _per_email(build_only, n),
              "before_dkimpy_sign": _per_email(before, n), "after_cached_openssl_signer": _per_email(after, n),
              "after_signature_verifies": bool(verified)}
    result["speed_up"] = round(result["before_dkimpy_sign"]["cpu_ms"]
                               / max(result["after_cached_openssl_signer"]["cpu_ms"], 0.01), 1)
    print(json.dumps(result, indent=2))
    out = Path(__file__).resolve().parent / "results" / "dkim.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
