#!/usr/bin/env bash
# Run `ansible-test sanity` offline on a scratch copy of the collection.
#
# ansible-test must run from a path ending in ansible_collections/<ns>/<name>, and lists files
# through git. The repository is the collection root, and collections/ansible_collections/
# fediops/mastodon is a symlink that resolves back to it, so we copy the files git knows about
# (tracked + untracked, minus ignored, minus the dev-only trees galaxy.yml's build_ignore keeps out
# of the artifact: lab/, molecule/, bench/, inventories/, .ci/) into .cache/sanity/ansible_collections/fediops/mastodon,
# `git init` there, and run from that copy.
#
# ansible-test bootstraps pip in each venv it builds from a get-pip script it downloads from a
# host unreachable here; lab/get_pip_offline.py stands in for it (see
# ../shared/reference/lab-substrate.md "ansible-test offline").
#
# Usage: tests/sanity/run.sh [extra ansible-test sanity args, e.g. --test pylint plugins/modules/x.py]
# Env:   VENV (default <repo>/.venv), SANITY_MODE (--venv | --local; default --venv)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${VENV:-$repo/.venv}
mode=${SANITY_MODE:---venv}
scratch=$repo/.cache/sanity
dest=$scratch/ansible_collections/fediops/mastodon

[ -x "$venv/bin/ansible-test" ] || { echo "ansible-test not found in $venv (run lab/bootstrap.sh)" >&2; exit 2; }

# Offline pip bootstrap: the pip version ansible-test pins is read from its own source.
pip_ver=$("$venv/bin/python" - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
target=$cache/get_pip_${pip_ver//./_}.py
if ! cmp -s "$repo/lab/get_pip_offline.py" "$target"; then
  cp "$repo/lab/get_pip_offline.py" "$target"
fi

# Fresh scratch copy of the collection; .git and tests/output (ansible-test's cache) survive.
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name .git ! -name tests -exec rm -rf {} +
[ -d "$dest/tests" ] && find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
cd "$repo"
git ls-files -co --exclude-standard -z \
  | grep -zv -e '^collections/' -e '^\.cache/' -e '^lab/' -e '^molecule/' -e '^bench/' -e '^inventories/' -e '^\.ci/' \
  | while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null --no-recursion -T - -cf - | tar -xf - -C "$dest"
(
  cd "$dest"
  [ -d .git ] || git init -q
  grep -qx 'tests/output/' .gitignore 2>/dev/null || echo 'tests/output/' >> .git/info/exclude
)

cd "$dest"
start=$(date +%s)
set +e
"$venv/bin/ansible-test" sanity --python 3.11 "$mode" --color no "$@"
rc=$?
set -e
echo "ansible-test sanity finished with rc=$rc in $(( $(date +%s) - start ))s (scratch: $dest)"
exit $rc
