#!/bin/sh
# Run as root inside the image being built, by the Dockerfile and by the mmdebstrap
# build alike, after the packages are installed.
set -eu

# The sandbox runs as uid 1000 unless the workspace belongs to another user; a
# named user keeps tools that look the uid up in /etc/passwd happy.
useradd --uid 1000 --user-group --create-home --shell /bin/bash shipyard
mkdir -p /workspace
chown shipyard:shipyard /workspace

# The workspace may be owned by a uid other than the one git runs as (a host
# checkout mounted in); it is the sandbox's own tree, so trust it.
git config --system safe.directory '*'

rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
