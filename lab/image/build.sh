#!/usr/bin/env bash
# Build the lab's Debian 12 base image with debootstrap (no registry is reachable here) and tag
# it localhost/fediops-base:<recipe hash> and :current. A rebuild happens only when this script
# or packages.txt changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=localhost/fediops-base
recipe_hash=$(cat "$here/build.sh" "$here/packages.txt" | sha256sum | cut -c1-12)
mirror=${FEDIOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FEDIOPS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if podman image exists "$image:$recipe_hash"; then
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

echo "[image] debootstrap bookworm into $rootfs"
debootstrap --variant=minbase --include=python3,systemd,systemd-sysv,dbus bookworm "$rootfs" "$mirror" >/dev/null

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
SOURCES
# No daemon may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
# The postgresql role creates clusters itself; none is made at package install.
mkdir -p "$rootfs/etc/postgresql-common"
echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.conf"

mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
packages=$(grep -v -e '^#' -e '^$' "$here/packages.txt" | tr '\n' ' ')
echo "[image] installing: $packages"
chroot "$rootfs" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null"
chroot "$rootfs" /bin/sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/*'

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

# Every container gets its own machine-id and SSH host keys at first boot.
rm -f "$rootfs/etc/ssh/ssh_host_"*
: >"$rootfs/etc/machine-id"
cat >"$rootfs/etc/systemd/system/fediops-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
chroot "$rootfs" systemctl enable fediops-ssh-hostkeys.service >/dev/null
install -d -m 700 "$rootfs/root/.ssh"
rm -f "$rootfs/usr/sbin/policy-rc.d"

for fs in dev/pts dev proc; do umount -l "$rootfs/$fs"; done
echo "[image] importing"
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image:$recipe_hash" >/dev/null
podman tag "$image:$recipe_hash" "$image:current"
# Older recipes' images go, unless a container still uses them.
for old in $(podman images --format "{{.Repository}}:{{.Tag}}" "$image" | grep -v -e ":$recipe_hash$" -e ":current$"); do
  podman rmi "$old" >/dev/null 2>&1 || true
done
echo "[image] built $image:$recipe_hash"
