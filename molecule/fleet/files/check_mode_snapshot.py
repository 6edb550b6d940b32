# Read back (never writes) what a check-mode run must leave alone on this host: a sha256 of every file
# under the configuration directories the roles manage, one digest over all of /etc (path, content or
# link target of every entry), the release `current` points at, and the MainPID of every running service.
import hashlib
import json
import os
import subprocess

MANAGED = ('/etc/postgresql/', '/etc/pgbouncer/', '/etc/redis/', '/etc/nginx/', '/etc/mastodon/', '/etc/seaweedfs/',
           '/etc/pgbackrest', '/etc/systemd/system/', '/etc/nftables', '/etc/fediops', '/etc/default/',
           '/etc/prometheus/')


def digest(path):
    h = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 16), b''):
            h.update(block)
    return h.hexdigest()


files, etc = {}, hashlib.sha256()
for root, dirs, names in os.walk('/etc'):
    dirs.sort()
    for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
        path = os.path.join(root, name)
        if os.path.islink(path):
            value = 'link:' + os.readlink(path)
        elif os.path.isfile(path):
            value = digest(path)
        else:
            continue
        etc.update(('%s %s\n' % (path, value)).encode())
        if path.startswith(MANAGED):
            files[path] = value

units = subprocess.run(['systemctl', 'list-units', '--type=service', '--state=running', '--plain', '--no-legend'],
                       check=True, capture_output=True, text=True).stdout.split('\n')
pids = {}
for unit in [line.split()[0] for line in units if line.strip()]:
    pids[unit] = subprocess.run(['systemctl', 'show', '--property=MainPID', '--value', unit],
                                check=True, capture_output=True, text=True).stdout.strip()

current = os.path.realpath('/home/mastodon/current') if os.path.lexists('/home/mastodon/current') else None
print(json.dumps({'files': files, 'etc_digest': etc.hexdigest(), 'current': current, 'main_pids': pids}))
