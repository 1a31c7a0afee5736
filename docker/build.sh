#!/usr/bin/env bash
# Builds the images with podman from the repository root, as habitus-<name>:
#   docker/build.sh [api] [worker-cpu] [worker-gpu] [redis] [orthanc]   (none named: all)
# pip inside the build uses this machine's pip settings (index and extra indexes on the
# network, CA bundle: from PIP_* variables or pip's configuration files). Where no registry
# is reachable, make the base first with docker/build-base.sh. Each image's build time goes
# to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(api worker-cpu worker-gpu redis orthanc)

# One pip setting of this machine: PIP_<NAME> first, then pip's configuration files.
pip_setting() {
    local variable
    variable=PIP_$(tr 'a-z-' 'A-Z_' <<<"$1")
    if [ -n "${!variable:-}" ]; then
        echo "${!variable}"
    else
        python3 -m pip config get "global.$1" 2>/dev/null || true
    fi
}

args=(--pull=missing --format docker --layers)
for setting in index-url extra-index-url; do
    # network indexes only: folders of this machine are not in the build (pip takes from the
    # network index what a local one would have given)
    urls=$(tr ' ' '\n' <<<"$(pip_setting "$setting")" | grep -E '^https?://' | paste -sd ' ' || true)
    [ -z "$urls" ] || args+=(--build-arg "PIP_$(tr 'a-z-' 'A-Z_' <<<"$setting")=$urls")
done
cert=$(pip_setting cert)
if [ -n "$cert" ] && [ -f "$cert" ]; then
    # a secret: mounted only while pip runs, in no layer of the image
    args+=(--secret "id=pip-ca,src=$cert" --build-arg PIP_CERT=/run/secrets/pip-ca)
fi

for image in "${images[@]}"; do
    file=docker/Dockerfile.$image
    [ -f "$file" ] || { echo "no $file" >&2; exit 2; }
    start=$SECONDS
    podman build "${args[@]}" --file "$file" --ignorefile "$file.dockerignore" \
        --tag "habitus-$image" .
    echo "habitus-$image built in $((SECONDS - start)) s" >&2
done
