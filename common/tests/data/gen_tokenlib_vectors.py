"""Generates tokenlib_vectors.json with Mozilla's Python tokenlib (pip install tokenlib==2.0.0).

Run once; the output is committed so the Rust tests need no Python.
"""
import json

import tokenlib

CASES = [
    ("master-secret", {"uid": 1, "node": "http://localhost:8000", "expires": 4102444800, "salt": "a1b2c3"}),
    ("another secret with spaces", {"uid": 123456789, "node": "https://sync-1.example.com", "expires": 1700000000.5, "salt": "0f0f0f",
                                    "fxa_uid": "1b6f7f6d2e5b4c3a", "fxa_kid": "0000001234567-qqo", "hashed_fxa_uid": "ab" * 16,
                                    "hashed_device_id": "cd" * 16, "tokenserver_origin": "python"}),
    ("s\u00e9cret-\u00fcnicode", {"uid": 42, "node": "http://127.0.0.1:5000", "expires": 4102444800, "salt": "deadbe",
                                  "fxa_uid": "caf\u00e9"}),
]

vectors = []
for secret, data in CASES:
    token = tokenlib.make_token(data, secret=secret)
    vectors.append({
        "secret": secret,
        "payload": json.loads(tokenlib.utils.decode_token_bytes(token)[:-32].decode("utf8")),
        "payload_bytes": tokenlib.utils.decode_token_bytes(token)[:-32].decode("utf8"),
        "token": token,
        "derived_secret": tokenlib.get_derived_secret(token, secret=secret),
    })

with open("tokenlib_vectors.json", "w") as f:
    json.dump(vectors, f, indent=2)
