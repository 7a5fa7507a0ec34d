# SPDX-License-Identifier: MPL-2.0
"""Offline checks of rendered Kubernetes manifests (tests/kubernetes.rs).

validate.py validate FILE   every object of FILE against the Kubernetes
                            schemas (strict: unknown fields are errors), the
                            Prometheus Operator's kinds against their CRD
                            schemas (validate-crds.mjs); one line per object,
                            exit 1 if any object fails or has no schema.
validate.py json FILE       the YAML documents of FILE as one JSON list.
"""
import json
import os
import subprocess
import sys

import kubernetes_validate
import yaml

# The oldest Kubernetes the manifests are meant for, and the newest known.
KUBERNETES_VERSIONS = ["1.27.0", "1.37.0"]
OPERATOR_API = "monitoring.coreos.com/"


def documents(path):
    with open(path, encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc]


def validate_builtin(obj):
    """None when obj is valid for every version, else what is wrong."""
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(p) for p in error.path)
            return f"{where}: {error.message} (Kubernetes {version})"
        except kubernetes_validate.SchemaNotFoundError:
            return f"no schema for {obj.get('apiVersion')} in Kubernetes {version}"
    return None


def validate_operator_kinds(objects):
    if not objects:
        return True
    here = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        ["node", os.path.join(here, "validate-crds.mjs")],
        input=json.dumps(objects), text=True, capture_output=True, timeout=60,
        cwd=here,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode == 0


def validate(path):
    ok = True
    operator_objects = []
    for obj in documents(path):
        if str(obj.get("apiVersion", "")).startswith(OPERATOR_API):
            operator_objects.append(obj)
            continue
        what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        problem = validate_builtin(obj)
        print(f"invalid {what}: {problem}" if problem else f"ok {what}")
        ok = ok and problem is None
    return validate_operator_kinds(operator_objects) and ok


def main(argv):
    if len(argv) != 3 or argv[1] not in ("validate", "json"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "json":
        print(json.dumps(documents(argv[2])))
        return 0
    return 0 if validate(argv[2]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
