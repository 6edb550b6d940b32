#!/usr/bin/env bash
# Build the lab's Debian 12 base image with mmdebstrap (no registry is reachable here) and tag
# it localhost/fediops-base:<recipe hash> and :current. A rebuild happens only when this script,
# packages.txt or the lab CA changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=localhost/fediops-base
# The lab CA lab/bootstrap.sh made (when there is one) is trusted by the image already: see "Trust the lab CA" below.
lab_ca=${FEDIOPS_LAB_HOME:-$HOME/.fediops-lab}/ca/ca.crt
recipe=("$here/build.sh" "$here/packages.txt")
if [ -f "$lab_ca" ]; then recipe+=("$lab_ca"); fi
recipe_hash=$(cat "${recipe[@]}" | sha256sum | cut -c1-12)
mirror=${FEDIOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FEDIOPS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# On a bare machine lab/bootstrap.sh starts this build before podman is installed (see FEDIOPS_IMAGE_WAIT_FOR below).
if command -v podman >/dev/null && podman image exists "$image:$recipe_hash"; then
  podman tag "$image:$recipe_hash" "$image:current"
  echo "[image] $image:$recipe_hash is up to date"
  exit 0
fi

rootfs=$(mktemp -d /var/tmp/fediops-rootfs.XXXXXX)
chmod 755 "$rootfs"
cleanup() {
  for fs in proc sys dev/pts dev; do umountpoint="$rootfs/$fs"; mountpoint -q "$umountpoint" && umount -l "$umountpoint"; done
  rm -rf "$rootfs"
}
trap cleanup EXIT

started=$SECONDS
# mmdebstrap, not debootstrap: one apt run resolves and downloads the base system and the lab's packages together
# and dpkg installs them once (debootstrap fetches one file at a time and unpacks the base twice, then a second apt
# run adds the packages). Measured the same hour on this machine: 57 s against 81 s to the same package set.
# While the image is built, dpkg skips fsync (a crash only loses this scratch tree; the setting is removed before the
# image is saved). Man pages, docs and translations are never unpacked, here or by a role's apt run in a lab container
# (nobody reads them there; copyright files stay; mmdebstrap keeps its --dpkgopt lines in
# /etc/dpkg/dpkg.cfg.d/99mmdebstrap): with the man-db trigger they cost the package step CPU. Nor is the source data
# of libjs-moment-timezone (212 MB, a sixth of the image, which Prometheus's package pulls in): its classic UI loads
# only moment-timezone-with-data.min.js, beside that directory. The postgresql role
# creates clusters itself, so none is made at package install. mmdebstrap keeps every daemon from starting in the
# chroot while packages install, and leaves the apt lists and cache empty.
packages=$(grep -v -e '^#' -e '^$' "$here/packages.txt" | paste -sd, -)
echo "[image] mmdebstrap bookworm into $rootfs: systemd, dbus and $packages"
# The hooks are shell lines mmdebstrap runs with the tree as $1, so they are single-quoted.
# shellcheck disable=SC2016
mmdebstrap --quiet --mode=root --variant=minbase --include="systemd,systemd-sysv,dbus,$packages" \
  --setup-hook='mkdir -p "$1/etc/dpkg/dpkg.cfg.d" "$1/etc/postgresql-common"
    echo force-unsafe-io >"$1/etc/dpkg/dpkg.cfg.d/fediops-image-build"
    echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.conf"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/javascript/moment-timezone/data/*' \
  --customize-hook='rm -f "$1/etc/dpkg/dpkg.cfg.d/fediops-image-build"' \
  bookworm "$rootfs" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security_mirror bookworm-security main"
echo "[image] the base system and packages took $((SECONDS - started)) s"

# The steps below run commands in the tree, which want /proc and /dev (the Java hook of update-ca-certificates).
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"

# Trust the lab CA: the same file, name and mode the common role writes for common_trusted_ca_certs
# (roles/common/tasks/files.yml: fediops-<basename>.crt). The role still manages it; a host from this
# image just has nothing to change, so the first converge skips update-ca-certificates, whose Java
# keystore hook costs every host a JVM start (about 20 s of a cold `make lab` on 2 cores).
if [ -f "$lab_ca" ]; then
  install -m 0644 -o root -g root "$lab_ca" "$rootfs/usr/local/share/ca-certificates/fediops-ca.crt"
  # (c_rehash's warning about the bundle file itself is expected and hidden; a failure still stops the build)
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

# Services stay off until a role asks for them; sshd is what Ansible uses to get in.
for unit in postgresql pgbouncer redis-server nginx prometheus-node-exporter \
  systemd-journal-remote.socket systemd-journal-remote.service systemd-journal-upload.service \
  prometheus prometheus-alertmanager prometheus-blackbox-exporter prometheus-postgres-exporter \
  prometheus-redis-exporter prometheus-pgbouncer-exporter prometheus-nginx-exporter; do
  chroot "$rootfs" systemctl disable "$unit" >/dev/null 2>&1 || true
done
chroot "$rootfs" systemctl enable ssh >/dev/null
# Units that cannot work in a container and would only leave the system "degraded".
for unit in systemd-remount-fs.service getty@tty1.service console-getty.service systemd-logind.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  chroot "$rootfs" systemctl mask "$unit" >/dev/null 2>&1 || true
done

# Every container gets its own machine-id and SSH host key at first boot. One ed25519 key, not ssh-keygen -A's three:
# thirteen containers booting together on two cores spent most of their boot making RSA keys.
rm -f "$rootfs/etc/ssh/ssh_host_"*
: >"$rootfs/etc/machine-id"
printf '# Managed by fediops lab/image/build.sh: the lab image makes one host key (fediops-ssh-hostkeys.service)\nHostKey /etc/ssh/ssh_host_ed25519_key\n' \
  >"$rootfs/etc/ssh/sshd_config.d/fediops-hostkey.conf"
cat >"$rootfs/etc/systemd/system/fediops-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate the SSH host key on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
UNIT
chroot "$rootfs" systemctl enable fediops-ssh-hostkeys.service >/dev/null
# The system users are made here, and /etc and /var are marked up to date with /usr, so no container runs
# systemd-sysusers (and the other ConditionNeedsUpdate units) at its first boot.
chroot "$rootfs" systemd-sysusers >/dev/null
touch -r "$rootfs/usr" "$rootfs/etc/.updated" "$rootfs/var/.updated"
install -d -m 700 "$rootfs/root/.ssh"

for fs in dev/pts dev proc; do umount -l "$rootfs/$fs"; done
# lab/bootstrap.sh installs podman while mmdebstrap runs, and names a file it creates once podman is ready.
if [ -n "${FEDIOPS_IMAGE_WAIT_FOR:-}" ]; then
  waited=$SECONDS
  while [ ! -e "$FEDIOPS_IMAGE_WAIT_FOR" ]; do
    if [ $((SECONDS - waited)) -ge 900 ]; then
      echo "[image] podman was not installed within 15 minutes (lab/bootstrap.sh)" >&2
      exit 1
    fi
    sleep 0.5
  done
  if [ $((SECONDS - waited)) -gt 0 ]; then echo "[image] waited $((SECONDS - waited)) s for podman"; fi
fi
echo "[image] importing"
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image:$recipe_hash" >/dev/null
podman tag "$image:$recipe_hash" "$image:current"
# Older recipes' images go, unless a container still uses them.
for old in $(podman images --format "{{.Repository}}:{{.Tag}}" "$image" | grep -v -e ":$recipe_hash$" -e ":current$"); do
  podman rmi "$old" >/dev/null 2>&1 || true
done
echo "[image] built $image:$recipe_hash in $((SECONDS - started)) s"
