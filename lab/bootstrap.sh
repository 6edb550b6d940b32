#!/usr/bin/env bash
# Prepare this machine to run the fediops lab and test suite. Idempotent: every step checks
# before it acts, so `make lab` and `make test` call it unconditionally.
#
#   - Debian packages: podman, runc, mmdebstrap, then (while the image builds) the controller's tools
#
# `lab/bootstrap.sh --lab` (what `make lab` runs) stops at what the lab needs: no test tools, test servers, fixture
# test packages, promtool or ansible-test stand-in. On a bare 2-core machine those compete with the image build for
# the CPU; `make check`, `make test` and the rest run the whole script and add them.
#   - /etc/containers/containers.conf.d/fediops.conf: runc runtime and ulimits this host allows
#   - promtool, unpacked from Debian's prometheus package into .cache/prometheus/ (no server installed)
#   - .venv/ with the pinned controller tooling (requirements-dev.txt)
#   - the lab SSH key pair and certificate authority under $FEDIOPS_LAB_HOME
#   - ansible-test's pip bootstrap stand-in (the real one is downloaded from an unreachable host)
#   - the base image (lab/image/build.sh, rebuilt only when its recipe changes), built while the steps after
#     the CA run (the controller's packages, promtool, the venv)
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
: "${FEDIOPS_LAB_HOME:=$HOME/.fediops-lab}"
venv="$repo_root/.venv"
lab_only=false
if [ "${1:-}" = "--lab" ]; then lab_only=true; fi

log() { printf '[bootstrap] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: run as root (rootful podman is required for systemd containers on this host's cgroup v1)" >&2
  exit 1
fi

# Two apt runs, so the base image (the longest step on a bare machine) starts as early as it can: first what the
# image build starts with (mmdebstrap, and openssl for the lab CA the image trusts), then, while mmdebstrap runs, the
# container runtime and the controller's tools; the image build waits for them only to import its tree into podman.
# (The image's packages go into its own tree with its own apt, so the two do not contend for the host's dpkg lock.)
image_build_packages=(mmdebstrap openssl)
substrate_packages=(
  podman runc containernetworking-plugins golang-github-containernetworking-plugin-dnsname openssh-client
)
controller_packages=(
  make git curl python3-venv
  # ansible.posix.synchronize (the autoscaler role copies the collection and its wheels to the monitoring host)
  rsync
)
test_packages=(
  # test and bench tools run from the controller
  shellcheck wrk postgresql-client redis-tools
  # real servers the plugin unit tests start privately in temp dirs
  postgresql-15 pgbouncer redis-server
)
# The fixture's host-side test dependencies come with the test packages.
mapfile -t fixture_packages < <(bash "$repo_root/lab/fixture/tests/install-deps.sh" --list)
lists_updated=false
install_missing() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$lists_updated" = false ]; then apt-get update -qq; lists_updated=true; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_missing "${image_build_packages[@]}"

# The lab's certificate authority: roles that serve TLS in the lab (object storage for pgBackRest,
# the CDN edges) sign their certificates with it, common installs it in every trust store, and the image trusts it.
mkdir -p "$FEDIOPS_LAB_HOME/ca"
chmod 700 "$FEDIOPS_LAB_HOME/ca"
if [ ! -f "$FEDIOPS_LAB_HOME/ca/ca.crt" ]; then
  log "creating the lab certificate authority"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=fediops lab CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$FEDIOPS_LAB_HOME/ca/ca.key" -out "$FEDIOPS_LAB_HOME/ca/ca.crt" 2>/dev/null
fi

# The base image builds (mmdebstrap: mostly dpkg) while this machine's tooling installs below; both are needed
# before `make lab` creates a container. Its output is prefixed [image]; a failure fails bootstrap at wait_image.
# It imports its tree only once podman is installed: this script creates $substrate_ready then.
substrate_ready=$(mktemp -d /tmp/fediops-bootstrap.XXXXXX)/substrate-ready
FEDIOPS_IMAGE_WAIT_FOR="$substrate_ready" "$repo_root/lab/image/build.sh" &
image_pid=$!
# A later step that fails still lets the build finish (and unmount its chroot) before bootstrap exits; without the
# runtime its import then fails with podman's own message.
trap 'touch "$substrate_ready"; wait "$image_pid" 2>/dev/null || true; rm -rf "$(dirname "$substrate_ready")"' EXIT
wait_image() {
  if ! wait "$image_pid"; then
    echo "bootstrap: the base image build failed (lab/image/build.sh; its output is above)" >&2
    exit 1
  fi
}

install_missing "${substrate_packages[@]}" "${controller_packages[@]}"

# crun (podman's default) refuses this host's hybrid cgroup hierarchy; the hard limit for
# open files/processes here is 20000, below podman's default request.
conf_dir=/etc/containers/containers.conf.d
conf_file=$conf_dir/50-fediops.conf
wanted_conf=$(cat <<'EOF'
# Managed by fediops lab/bootstrap.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
EOF
)
if [ "$(cat "$conf_file" 2>/dev/null)" != "$wanted_conf" ]; then
  log "writing $conf_file"
  mkdir -p "$conf_dir"
  printf '%s\n' "$wanted_conf" >"$conf_file"
fi

# Many systemd containers each want inotify instances.
if [ "$(sysctl -n fs.inotify.max_user_instances)" -lt 1024 ]; then
  sysctl -q -w fs.inotify.max_user_instances=1024
fi

mkdir -p "$FEDIOPS_LAB_HOME/ssh"
chmod 700 "$FEDIOPS_LAB_HOME/ssh"
if [ ! -f "$FEDIOPS_LAB_HOME/ssh/id_ed25519" ]; then
  log "generating the lab SSH key"
  ssh-keygen -q -t ed25519 -N '' -C fediops-lab -f "$FEDIOPS_LAB_HOME/ssh/id_ed25519"
fi

# podman and its configuration are in place: the image build may import.
touch "$substrate_ready"

# pip does not byte-compile the ~19,000 modules at install (about 22 s of CPU, two thirds of the install, taken from
# the image build beside it): Python compiles what is imported, once, on first use, and keeps it (the venv is root's).
req_hash=$(sha256sum "$repo_root/requirements-dev.txt" | cut -c1-16)
if [ "$(cat "$venv/.requirements-hash" 2>/dev/null)" != "$req_hash" ]; then
  log "creating $venv from requirements-dev.txt"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-compile --upgrade pip >/dev/null
  "$venv/bin/pip" install -q --no-compile -r "$repo_root/requirements-dev.txt"
  echo "$req_hash" >"$venv/.requirements-hash"
fi

if [ "$lab_only" = true ]; then
  # While the image still builds, the controller downloads what the converge would otherwise wait on the network for
  # (the autoscaler's wheels; a no-op once downloaded). Skipped when the image was already there: the converge still
  # downloads whatever is missing, so this only saves time, and costs an ansible-playbook start when nothing is left.
  if kill -0 "$image_pid" 2>/dev/null; then
    log "downloading the autoscaler's wheels on the controller while the image builds (playbooks/controller_downloads.yml)"
    downloads_log=$(dirname "$substrate_ready")/controller_downloads.log
    if ! (cd "$repo_root" && "$venv/bin/ansible-playbook" playbooks/controller_downloads.yml >"$downloads_log" 2>&1); then
      cat "$downloads_log" >&2
      echo "bootstrap: playbooks/controller_downloads.yml failed (its output is above)" >&2
      exit 1
    fi
  fi
  wait_image
  log "ready for the lab (make check and make test add the test tools)"
  exit 0
fi

install_missing "${test_packages[@]}" "${fixture_packages[@]}"

# promtool (Debian's prometheus package) checks and unit-tests the monitoring role's alert rules
# (tests/unit/roles/test_alert_rules.py). Only the binary is unpacked, into .cache/prometheus/: the
# controller must not run a Prometheus server, which installing the package would start.
promtool="$repo_root/.cache/prometheus/promtool"
if [ ! -x "$promtool" ]; then
  log "unpacking promtool from Debian's prometheus package into .cache/prometheus/"
  deb_dir=$(mktemp -d)
  # apt downloads as _apt when it can write there; as root it warns and downloads anyway.
  chown _apt "$deb_dir" 2>/dev/null || true
  if ! (cd "$deb_dir" && apt-get download -qq prometheus 2>/dev/null); then
    apt-get update -qq
    (cd "$deb_dir" && apt-get download -qq prometheus)
  fi
  mkdir -p "$repo_root/.cache/prometheus"
  dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -O ./usr/bin/promtool >"$promtool.tmp"
  chmod 0755 "$promtool.tmp"
  mv "$promtool.tmp" "$promtool"
  rm -rf "$deb_dir"
fi

# ansible-test bootstraps pip in each venv it makes by downloading get-pip.py; this stand-in
# does the same offline. ensurepip runs in its own process: called in-process it sets
# PIP_CONFIG_FILE=/dev/null, and the following pip would lose /etc/pip.conf's CA bundle.
getpip_cache="$HOME/.ansible/test/cache"
mkdir -p "$getpip_cache"
for version in 24_2 24_3 25_0 25_1; do
  target="$getpip_cache/get_pip_${version}.py"
  if ! cmp -s "$repo_root/lab/get_pip_offline.py" "$target"; then
    cp "$repo_root/lab/get_pip_offline.py" "$target"
  fi
done

# The Mastodon-interface fixture's own tests run on the controller (its packages came with the host's above).
bash "$repo_root/lab/fixture/tests/install-deps.sh" >/dev/null

wait_image
log "ready"
