#!/bin/sh
# Imports the Todo scenario's users and roles into a Countersign directory, registers an
# enforcement point for it, and installs the policy. Run from this directory with the
# configuration the server uses (it must include countersign.toml's settings):
#   ./setup.sh path/to/countersign.toml
# Prints the enforcement point's client secret (shown once).
set -eu
config=${1:-countersign.toml}
cs() { countersign --config "$config" "$@"; }
here=$(cd "$(dirname "$0")" && pwd)

for group in admin editor viewer evil_genius; do
  cs group add --name "$group"
done
python3 - "$here/users.json" <<'PY' | while IFS='	' read -r subject email name groups; do
import json, sys
for u in json.load(open(sys.argv[1])):
    print("\t".join([u["subject"], u["email"], u["name"], " ".join(u["groups"])]))
PY
  cs human add --subject "$subject" --email "$email" --name "$name"
  for group in $groups; do
    cs group add-member "$group" "$subject"
  done
done
# The gateway or app that asks (its owner: whoever operates it).
cs human add --subject todo-operator --email operator@todo.example --name "Todo operator"
cs agent add --client-id todo-pep --owner todo-operator --auth client_secret_basic --bearer-only
cs policy add "$here/../../docs/policy/examples/authzen-todo.cedar" --activate
