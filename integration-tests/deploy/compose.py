#!/usr/bin/env python3
"""Checks compose.yaml against the Compose specification's JSON schema.

The schema is the one docker-compose 1.29.2 ships (compose/config/
compose_spec.json), taken from its wheel on PyPI, so the check needs no
Docker. Also checks that every file the file names exists in the repository.
Needs PyYAML and jsonschema (pip).

    integration-tests/deploy/compose.py [compose.yaml]
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import jsonschema
import yaml

COMPOSE_WHEEL = "docker-compose==1.29.2"
SCHEMA_IN_WHEEL = "compose/config/compose_spec.json"


def compose_schema() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--dest", tmp, COMPOSE_WHEEL],
            check=True,
        )
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            return json.loads(z.read(SCHEMA_IN_WHEEL))


def named_files(compose: dict, root: pathlib.Path) -> list[str]:
    """Files compose.yaml refers to that are missing."""
    missing = []
    for name, service in compose.get("services", {}).items():
        build = service.get("build")
        if isinstance(build, dict):
            context = root / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                missing.append(f"{name}: build file {dockerfile}")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                if not (root / source).exists():
                    missing.append(f"{name}: bind mount {source}")
    return missing


def main() -> int:
    path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "compose.yaml")
    compose = yaml.safe_load(path.read_text())
    schema = compose_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    for error in errors:
        where = "/".join(str(p) for p in error.path) or "(top)"
        print(f"FAIL {path}: {where}: {error.message}", file=sys.stderr)
    missing = named_files(compose, path.resolve().parent)
    for problem in missing:
        print(f"FAIL {path}: {problem} does not exist", file=sys.stderr)
    if errors or missing:
        return 1
    print(f"{path}: valid against {COMPOSE_WHEEL}'s {SCHEMA_IN_WHEEL}; "
          f"{len(compose['services'])} services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
