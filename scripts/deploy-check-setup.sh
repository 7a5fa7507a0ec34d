#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs what tests/kubernetes.rs needs to check deploy/kubernetes offline:
# kubectl (its built-in kustomize renders the bases; Debian's
# kubernetes-client when there is none), the Kubernetes schemas with
# kubernetes-validate (in a venv under target/), and the Prometheus
# Operator's CRD schemas (@kubernetes-models, npm).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v kubectl >/dev/null 2>&1; then
  echo "deploy-check-setup: installing kubernetes-client" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
venv=target/deploy-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import kubernetes_validate" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/kubernetes/check/requirements.txt
fi
if [ ! -d deploy/kubernetes/check/node_modules/@kubernetes-models/prometheus-operator ]; then
  (cd deploy/kubernetes/check && npm ci --no-audit --no-fund --silent)
fi
