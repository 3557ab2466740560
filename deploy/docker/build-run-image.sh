#!/usr/bin/env bash
# Build Orca's run image without a registry or a base image: an empty root file system holding only the
# mount points that deploy/docker/dagster.docker.yaml binds from the host (read-only), imported as
# orca-run:latest (or the tag given). Run it where dockerd runs the daemon's containers (DOCKER_HOST).
# /bin, /sbin, /lib and /lib64 mirror the host: links into /usr on a merged-/usr system (Debian 12), else
# empty folders to bind like /usr.
set -euo pipefail
tag="${1:-orca-run:latest}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{usr,etc,opt,var/lib,root,tmp,proc,sys,dev,work}
chmod 1777 "$root/tmp"
for top in bin sbin lib lib64; do
    if [ -L "/$top" ]; then
        ln -s "$(readlink "/$top")" "$root/$top"
    elif [ -d "/$top" ]; then
        mkdir "$root/$top"
    fi
done
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "built $tag"
