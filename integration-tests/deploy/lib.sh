# Shared by the deployment tests (sourced, from the repository's root).

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The test FxA's public key as one JSON line: what the tokenserver is given
# (SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK) to check the end-to-end test's tokens.
test_fxa_jwk() {
    python3 -c 'import json; print(json.dumps(json.load(open("integration-tests/src/fxa_test_keys.json"))["primary"]["jwk"]))'
}
