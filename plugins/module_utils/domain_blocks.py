# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain-block subscriptions: the pure logic and a small client for Mastodon's admin API.

Used by the fediops.mastodon.mastodon_domain_blocks module and, unchanged, by the host's timer
(the role copies this file to the maintenance host and runs it with ``--config``). Standard
library only, so the same file runs under Ansible and under plain python3.

- parse_csv(): Mastodon's own export format (4.1+), ``#domain,#severity,#reject_media,
  #reject_reports,#public_comment,#obfuscate``; a headerless file is domains only, severity
  ``suspend`` (as Mastodon's import treats it).
- desired_blocks(): sources merged (the stricter block wins), then local additions (win over the
  sources), then allow-overrides (never blocked, even when a source lists them).
- plan(): the difference against the live blocks. A live block is ours only when its
  ``private_comment`` carries the ownership marker; blocks without it (a moderator's) are never
  changed or removed.
- cap_problem(): a run adding or removing more than ``max_changes`` blocks is refused.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import csv
import hashlib
import io
import json
import re
import ssl

try:  # Python 3
    from urllib.request import Request, build_opener, HTTPSHandler
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    raise

SEVERITIES = ('noop', 'silence', 'suspend')
FIELDS = ('severity', 'reject_media', 'reject_reports', 'public_comment', 'obfuscate')
CSV_HEADER = ('#domain', '#severity', '#reject_media', '#reject_reports', '#public_comment', '#obfuscate')
# Mastodon's import refuses more rows than this (Admin::Import ROWS_PROCESSING_LIMIT).
ROWS_LIMIT = 20000
DEFAULT_MARKER = 'fediops-managed'
TRUE = ('true', 't', '1', 'yes', 'y', 'on')
FALSE = ('false', 'f', '0', 'no', 'n', 'off', '')
DOMAIN_RE = re.compile(r'^(?=.{1,253}$)([a-z0-9_*]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$')


class DomainBlockError(Exception):
    """Bad input (a source, an addition, an override) or a refused run; the message names what."""


def _bool(value, where):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise DomainBlockError('%s: %r is not a boolean (true/false)' % (where, value))


def normalize_domain(value, where):
    domain = str(value or '').strip().lower().rstrip('.')
    if not domain:
        raise DomainBlockError('%s: the domain is empty' % where)
    if '://' in domain or '/' in domain or not DOMAIN_RE.match(domain):
        raise DomainBlockError('%s: %r is not a domain name' % (where, value))
    try:
        domain = domain.encode('idna').decode('ascii') if any(ord(c) > 127 for c in domain) else domain
    except UnicodeError:
        raise DomainBlockError('%s: %r is not a valid internationalized domain name' % (where, value))
    return domain


def block(domain, severity='suspend', reject_media=False, reject_reports=False, public_comment='', obfuscate=False,
          where='block'):
    """One block, normalized (what the merge and the comparison work on)."""
    severity = str(severity or 'suspend').strip().lower()
    if severity not in SEVERITIES:
        raise DomainBlockError('%s: severity %r is not one of %s' % (where, severity, ', '.join(SEVERITIES)))
    return {
        'domain': normalize_domain(domain, where),
        'severity': severity,
        'reject_media': _bool(reject_media, where + ' reject_media'),
        'reject_reports': _bool(reject_reports, where + ' reject_reports'),
        'public_comment': str(public_comment or '').strip(),
        'obfuscate': _bool(obfuscate, where + ' obfuscate'),
    }


def parse_csv(text, name='source'):
    """Blocks of one CSV in Mastodon's export format, in file order. Errors name the source and line."""
    if text is None:
        raise DomainBlockError('%s: no content' % name)
    if isinstance(text, bytes):
        text = text.decode('utf-8-sig')
    text = text.lstrip('\ufeff')
    rows = list(csv.reader(io.StringIO(text)))
    header = None
    blocks = []
    seen = {}
    for number, row in enumerate(rows, 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if header is None and cells[0].startswith('#'):
            header = [c.lower() for c in cells]
            if '#domain' not in header:
                raise DomainBlockError('%s line %d: a header without #domain (%s)' % (name, number, ','.join(cells)))
            unknown = [c for c in header if c not in CSV_HEADER]
            if unknown:
                raise DomainBlockError('%s line %d: unknown column(s) %s; Mastodon exports %s'
                                       % (name, number, ', '.join(unknown), ','.join(CSV_HEADER)))
            continue
        if header is None:
            header = ['#domain']
        values = dict(zip(header, cells))
        where = '%s line %d' % (name, number)
        if len(cells) > len(header) and any(cells[len(header):]):
            raise DomainBlockError('%s: %d columns, the header has %d' % (where, len(cells), len(header)))
        item = block(values.get('#domain'), severity=values.get('#severity') or 'suspend',
                     reject_media=values.get('#reject_media', 'false'),
                     reject_reports=values.get('#reject_reports', 'false'),
                     public_comment=values.get('#public_comment', ''),
                     obfuscate=values.get('#obfuscate', 'false'), where=where)
        if item['domain'] in seen:
            raise DomainBlockError('%s: %s is listed twice (first on line %d)' % (where, item['domain'], seen[item['domain']]))
        seen[item['domain']] = number
        blocks.append(item)
        if len(blocks) > ROWS_LIMIT:
            raise DomainBlockError('%s: more than %d rows (Mastodon\'s own import limit)' % (name, ROWS_LIMIT))
    return blocks


def to_csv(blocks):
    """Blocks back in Mastodon's export format (for the diff and for review)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(CSV_HEADER)
    for item in sorted(blocks, key=lambda b: b['domain']):
        writer.writerow([item['domain'], item['severity'], str(item['reject_media']).lower(),
                         str(item['reject_reports']).lower(), item['public_comment'], str(item['obfuscate']).lower()])
    return out.getvalue()


def stricter(a, b):
    """Two sources list one domain: the stricter severity, any reject flag, the first comment."""
    merged = dict(a)
    if SEVERITIES.index(b['severity']) > SEVERITIES.index(a['severity']):
        merged['severity'] = b['severity']
    for flag in ('reject_media', 'reject_reports', 'obfuscate'):
        merged[flag] = a[flag] or b[flag]
    merged['public_comment'] = a['public_comment'] or b['public_comment']
    return merged


def sha256_hex(data):
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    return hashlib.sha256(data).hexdigest()


def check_pin(name, data, expected):
    """A pinned source must have exactly the reviewed content."""
    if expected:
        actual = sha256_hex(data)
        if actual != expected.strip().lower():
            raise DomainBlockError('%s: sha256 is %s, pinned %s (the list changed since it was reviewed; review it '
                                   'and update the pin, or unpin it to follow the URL)' % (name, actual, expected))


def desired_blocks(sources, additions=None, allow=None):
    """sources: [(name, [block, ...])]; additions: [block dict]; allow: [domain]. Returns {domain: block}."""
    desired = {}
    origin = {}
    for name, blocks in sources:
        for item in blocks:
            domain = item['domain']
            if domain in desired:
                desired[domain] = stricter(desired[domain], item)
                origin[domain].append(name)
            else:
                desired[domain] = dict(item)
                origin[domain] = [name]
    allowed = set()
    for index, domain in enumerate(allow or []):
        allowed.add(normalize_domain(domain, 'allow[%d]' % index))
    for index, raw in enumerate(additions or []):
        where = 'additions[%d]' % index
        if not isinstance(raw, dict) or not raw.get('domain'):
            raise DomainBlockError('%s: needs at least a domain' % where)
        unknown = sorted(set(raw) - set(('domain',) + FIELDS))
        if unknown:
            raise DomainBlockError('%s: unknown key(s) %s' % (where, ', '.join(unknown)))
        item = block(where=where, **dict((k, v) for k, v in raw.items() if v is not None))
        if item['domain'] in allowed:
            raise DomainBlockError('%s: %s is both a local addition and an allow-override' % (where, item['domain']))
        desired[item['domain']] = item
        origin[item['domain']] = ['additions']
    for domain in allowed:
        desired.pop(domain, None)
    return desired


def is_managed(live, marker):
    return marker in (live.get('private_comment') or '')


def private_comment(marker, names):
    return '%s (%s)' % (marker, ', '.join(names)) if names else marker


def comparable(item):
    return dict((k, item.get(k) if k != 'public_comment' else (item.get(k) or '')) for k in FIELDS)


def plan(desired, live, marker=DEFAULT_MARKER):
    """The changes that bring the live blocks to the desired ones, never touching an unmarked block.

    Returns dict(create=[block], update=[(id, block, live)], delete=[live], unmanaged=[domain]) sorted by domain.
    """
    by_domain = {}
    for item in live:
        by_domain[str(item['domain']).lower()] = item
    create, update, delete, unmanaged = [], [], [], []
    for domain in sorted(desired):
        want = desired[domain]
        have = by_domain.get(domain)
        if have is None:
            create.append(want)
        elif not is_managed(have, marker):
            unmanaged.append(domain)
        elif comparable(have) != comparable(want):
            update.append((str(have['id']), want, have))
    for domain in sorted(by_domain):
        have = by_domain[domain]
        if domain not in desired and is_managed(have, marker):
            delete.append(have)
    return dict(create=create, update=update, delete=delete, unmanaged=unmanaged)


def cap_problem(changes, max_changes):
    """The refusal when a run would add or remove more blocks than the cap (None when within it)."""
    added, removed = len(changes['create']), len(changes['delete'])
    if max_changes is not None and max_changes >= 0 and (added > max_changes or removed > max_changes):
        return ('refusing to apply: this run would add %d and remove %d domain blocks, more than max_changes=%d '
                '(a corrupt or emptied list must not unblock or block the fediverse); nothing was changed. Review the '
                'sources and raise max_changes for this run if the change is intended.' % (added, removed, max_changes))
    return None


def managed_view(blocks, marker):
    """The managed live blocks as CSV text (diff before/after)."""
    return to_csv([dict(comparable(b), domain=str(b['domain']).lower()) for b in blocks if is_managed(b, marker)])


def after_view(live, changes, marker):
    by_domain = dict((str(b['domain']).lower(), comparable(b)) for b in live if is_managed(b, marker))
    for item in changes['delete']:
        by_domain.pop(str(item['domain']).lower(), None)
    for item in changes['create']:
        by_domain[item['domain']] = comparable(item)
    for _id, want, _have in changes['update']:
        by_domain[want['domain']] = comparable(want)
    return to_csv([dict(v, domain=k) for k, v in by_domain.items()])


# ---- Mastodon's admin API ----------------------------------------------------------------------

LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def next_link(header):
    for url, rel in LINK_RE.findall(header or ''):
        if rel == 'next':
            return url
    return None


class ApiError(Exception):
    def __init__(self, status, message):
        super(ApiError, self).__init__(message)
        self.status = status


class Client(object):
    """Bearer-token client of /api/v1/admin/domain_blocks. The token never appears in an error."""

    def __init__(self, base_url, token, ca_path=None, validate_certs=True, timeout=30, opener=None):
        self.base_url = base_url.rstrip('/')
        self.token = token
        self.timeout = timeout
        if opener is None:
            context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            opener = build_opener(HTTPSHandler(context=context))
        self.opener = opener

    def request(self, method, url, params=None):
        data = urlencode(params).encode() if params is not None else None
        req = Request(url if '://' in url else self.base_url + url, data=data, method=method)
        req.add_header('Authorization', 'Bearer ' + self.token)
        req.add_header('Accept', 'application/json')
        if data is not None:
            req.add_header('Content-Type', 'application/x-www-form-urlencoded')
        try:
            resp = self.opener.open(req, timeout=self.timeout)
            body = resp.read().decode('utf-8')
            return resp.status, dict((k.lower(), v) for k, v in resp.headers.items()), (json.loads(body) if body.strip() else None)
        except HTTPError as exc:
            body = exc.read().decode('utf-8', 'replace')
            try:
                detail = json.loads(body).get('error', body)
            except ValueError:
                detail = body
            raise ApiError(exc.code, '%s %s: HTTP %d %s' % (method, url.split('?')[0], exc.code, str(detail)[:300]))
        except URLError as exc:
            raise ApiError(None, '%s %s: %s' % (method, url.split('?')[0], exc.reason))

    def list(self, limit=200):
        """Every block, following the Link header's rel=next like Mastodon's clients do."""
        url = '/api/v1/admin/domain_blocks?limit=%d' % limit
        blocks, pages = [], 0
        while url:
            _status, headers, body = self.request('GET', url)
            blocks.extend(body or [])
            url = next_link(headers.get('link'))
            pages += 1
            if pages > 10000:
                raise ApiError(None, 'GET /api/v1/admin/domain_blocks: more than 10000 pages, giving up')
        return blocks

    @staticmethod
    def params(item, comment):
        params = dict(domain=item['domain'], severity=item['severity'], public_comment=item['public_comment'],
                      private_comment=comment)
        for flag in ('reject_media', 'reject_reports', 'obfuscate'):
            params[flag] = 'true' if item[flag] else 'false'
        return params

    def create(self, item, comment):
        return self.request('POST', '/api/v1/admin/domain_blocks', self.params(item, comment))[2]

    def update(self, block_id, item, comment):
        params = self.params(item, comment)
        params.pop('domain')
        return self.request('PUT', '/api/v1/admin/domain_blocks/%s' % block_id, params)[2]

    def delete(self, block_id):
        return self.request('DELETE', '/api/v1/admin/domain_blocks/%s' % block_id)[2]


def fetch_url(url, ca_path=None, timeout=30, opener=None):
    """The bytes of an HTTPS source (no token is sent to a list's publisher)."""
    if not url.startswith('https://') and not url.startswith('http://'):
        raise DomainBlockError('%s: only https:// URLs are followed' % url)
    if opener is None:
        context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
        opener = build_opener(HTTPSHandler(context=context))
    try:
        return opener.open(Request(url, headers={'User-Agent': 'fediops-domain-blocks'}), timeout=timeout).read()
    except (HTTPError, URLError) as exc:
        raise DomainBlockError('%s: could not fetch: %s' % (url, getattr(exc, 'reason', exc)))


def load_sources(sources, fetch=fetch_url, ca_path=None):
    """[{name, content | url, sha256}] -> [(name, [block])], with pins checked."""
    loaded = []
    names = set()
    for index, source in enumerate(sources or []):
        name = source.get('name') or source.get('url') or 'sources[%d]' % index
        if name in names:
            raise DomainBlockError('sources[%d]: the name %s is used twice' % (index, name))
        names.add(name)
        if (source.get('content') is None) == (not source.get('url')):
            raise DomainBlockError('%s: give exactly one of content (a file of the inventory) and url' % name)
        if source.get('url'):
            if not source['url'].startswith('https://'):
                raise DomainBlockError('%s: %s is not an https:// URL' % (name, source['url']))
            data = fetch(source['url'], ca_path=ca_path) if ca_path else fetch(source['url'])
        else:
            data = source['content']
        check_pin(name, data, source.get('sha256'))
        loaded.append((name, parse_csv(data, name)))
    return loaded


def sync(client, sources, additions=None, allow=None, marker=DEFAULT_MARKER, max_changes=100, check=False,
         fetch=fetch_url, ca_path=None):
    """Load, plan, cap-check and (unless check) apply. Returns a result dict; raises DomainBlockError on refusal."""
    if not marker or len(marker) < 4:
        raise DomainBlockError('marker must be at least 4 characters (it tells our blocks from a moderator\'s)')
    loaded = load_sources(sources, fetch=fetch, ca_path=ca_path)
    desired = desired_blocks(loaded, additions, allow)
    live = client.list()
    changes = plan(desired, live, marker)
    problem = cap_problem(changes, max_changes)
    result = dict(
        changed=bool(changes['create'] or changes['update'] or changes['delete']),
        created=[b['domain'] for b in changes['create']],
        updated=[w['domain'] for _i, w, _h in changes['update']],
        deleted=[str(b['domain']).lower() for b in changes['delete']],
        unmanaged=changes['unmanaged'],
        desired_count=len(desired),
        live_count=len(live),
        diff=dict(before=managed_view(live, marker), after=after_view(live, changes, marker),
                  before_header='managed domain blocks (live)', after_header='managed domain blocks (desired)'),
    )
    if problem:
        raise DomainBlockError(problem)
    if check:
        return result
    comment = private_comment(marker, [name for name, _b in loaded])
    for item in changes['delete']:
        client.delete(str(item['id']))
    for block_id, want, _have in changes['update']:
        client.update(block_id, want, comment)
    for item in changes['create']:
        client.create(item, comment)
    return result


def acquire_lock(path):
    """An exclusive flock on path, so the timer and a playbook run never apply at once. Keep the returned file open."""
    import fcntl
    handle = open(path, 'a')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        handle.close()
        raise DomainBlockError('another domain-block run holds %s; try again when it has finished' % path)
    return handle


def main(argv=None):
    """The timer's entry point: python3 domain_blocks.py --config FILE (token from $CREDENTIALS_DIRECTORY or a file)."""
    import argparse
    import os
    import sys
    parser = argparse.ArgumentParser(description='Apply domain-block subscriptions (fediops).')
    parser.add_argument('--config', required=True, help='JSON written by the fediops mastodon_maintenance role')
    parser.add_argument('--token-file', help='file holding the admin token (default: $CREDENTIALS_DIRECTORY/token)')
    parser.add_argument('--check', action='store_true', help='report what would change, change nothing')
    args = parser.parse_args(argv)
    with open(args.config) as handle:
        config = json.load(handle)
    token_file = args.token_file or os.path.join(os.environ.get('CREDENTIALS_DIRECTORY', ''), 'token')
    with open(token_file) as handle:
        token = handle.read().strip()
    client = Client(config['api_url'], token, ca_path=config.get('ca_path') or None, validate_certs=config.get('validate_certs', True))
    try:
        lock = acquire_lock(config['lock_file']) if config.get('lock_file') else None
        result = sync(client, config.get('sources', []), config.get('additions'), config.get('allow'),
                      marker=config.get('marker', DEFAULT_MARKER), max_changes=config.get('max_changes', 100),
                      check=args.check, ca_path=config.get('ca_path') or None)
        if lock:
            lock.close()
    except (DomainBlockError, ApiError) as exc:
        sys.stderr.write('domain blocks: %s\n' % exc)
        return 1
    result.pop('diff')
    sys.stdout.write(json.dumps(result, sort_keys=True) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
