#!/usr/bin/env bash
# Fail when the built collection artifact carries any dev-only or lab file.
set -euo pipefail
artifact=$1
forbidden='^\.|/\.pytest_cache/|^(lab|molecule|inventories|bench|collections|\.ci|\.venv|tests/unit|tests/molecule)/|^(ansible\.cfg|Makefile|requirements-dev\.txt|pytest\.ini)$|Mastodon-interface fixture|/fixture/'
listing=$(tar -tzf "$artifact" | sed 's|^\./||')
if leaked=$(grep -E "$forbidden" <<<"$listing"); then
  echo "build: the artifact contains dev/lab files:" >&2
  echo "$leaked" >&2
  exit 1
fi
for required in MANIFEST.json FILES.json meta/runtime.yml roles/common/meta/argument_specs.yml plugins/modules/nftables_service.py playbooks/site.yml; do
  grep -qx "$required" <<<"$listing" || { echo "build: $required missing from $artifact" >&2; exit 1; }
done
echo "build: $(basename "$artifact") has $(wc -l <<<"$listing") entries and no dev/lab files"

# The artifact installs, and what it ships is usable from the installed copy alone.
install_dir=$(mktemp -d)
trap 'rm -rf "$install_dir"' EXIT
ansible-galaxy collection install --offline --no-deps --force -p "$install_dir" "$artifact" >/dev/null
export ANSIBLE_COLLECTIONS_PATH=$install_dir
unset ANSIBLE_CONFIG
cd "$install_dir"  # away from the repository's ansible.cfg
ansible-doc -t module fediops.mastodon.nftables_service >/dev/null
ansible-doc -t filter fediops.mastodon.group_addresses >/dev/null
ansible-playbook -i localhost, --syntax-check fediops.mastodon.site >/dev/null
echo "build: installs offline; modules documented; fediops.mastodon.site passes a syntax check"
