"""The fleet's picture: live observations against the inventory (no server needed)."""
import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import fleet

ADDR = {'db1': '10.0.0.11', 'db2': '10.0.0.12', 'pgbouncer1': '10.0.0.13', 'web1': '10.0.0.31', 'sidekiq1': '10.0.0.41'}
INVENTORY = {'primary': ['db1'], 'replicas': ['db2'], 'pgbouncer': ['pgbouncer1'], 'addresses': ADDR, 'release': 'v1.0.0',
             'rebuild': [], 'drained': []}


def pg(in_recovery, timeline=1, upstream=None, running=True, installed=True, sysid='7000'):
    return {'postgres': {'installed': installed, 'running': running, 'in_recovery': in_recovery if running else None,
                         'timeline': timeline, 'system_identifier': sysid, 'upstream': upstream,
                         'receiver': 'streaming' if upstream else None, 'unit_state': 'active' if running else 'failed'}}


def bouncer(target):
    return {'pgbouncer': {'installed': True, 'running': True, 'database': 'mastodon_production', 'target_host': ADDR[target],
                          'target_port': 5432, 'source': 'SHOW DATABASES'}}


def app(*releases):
    return {'processes': [{'unit': 'mastodon-sidekiq@p%d.service' % i, 'kind': 'sidekiq', 'active': True, 'pid': 100 + i,
                           'release': r} for i, r in enumerate(releases)]}


def healthy(**override):
    obs = {'db1': pg(False), 'db2': pg(True, upstream=ADDR['db1']), 'pgbouncer1': bouncer('db1'), 'sidekiq1': app('v1.0.0')}
    obs.update(override)
    return obs


def checks(result):
    return [d['check'] for d in result['differences']]


def test_a_healthy_fleet_has_no_difference():
    result = fleet.picture(healthy(), INVENTORY, 'site')
    assert result['differences'] == []
    assert result['primary'] == 'db1'
    assert result['postgres']['db2']['upstream'] == 'db1'
    assert result['pgbouncer']['pgbouncer1']['target'] == 'db1'
    assert result['running_releases'] == ['1.0.0']


def test_a_new_fleet_has_no_difference():
    obs = {'db1': pg(None, installed=False, running=False), 'db2': pg(None, installed=False, running=False),
           'pgbouncer1': {'pgbouncer': {'installed': False, 'running': False}}, 'sidekiq1': {'processes': []}}
    assert fleet.picture(obs, INVENTORY, 'site')['differences'] == []


def test_stale_inventory_after_failover_is_refused_with_the_fix():
    # db2 promoted (timeline 2) while db1's host was gone; db1 is back, its start guard kept Postgres down.
    obs = healthy(db1=pg(None, timeline=1, running=False), db2=pg(False, timeline=2), pgbouncer1=bouncer('db2'))
    result = fleet.picture(obs, INVENTORY, 'site')
    assert checks(result) == ['primary']
    text = fleet.summary(result)[0]
    assert 'names db1 as postgres_primary, but db2 runs as the primary (timeline 2)' in text
    assert 'Move db2 into postgres_primary and db1 into postgres_replica' in text
    assert '--limit db1 -e postgresql_replica_rebuild=true' in text


def test_after_a_switchover_the_fix_is_only_the_inventory():
    obs = healthy(db1=pg(True, timeline=2, upstream=ADDR['db2']), db2=pg(False, timeline=2), pgbouncer1=bouncer('db2'))
    text = fleet.summary(fleet.picture(obs, INVENTORY, 'upgrade'))[0]
    assert 'already streams from db2' in text and 'rebuild' not in text


def test_two_primaries_are_split_brain_in_every_mode():
    obs = healthy(db1=pg(False, timeline=1), db2=pg(False, timeline=2))
    for mode in fleet.MODES:
        result = fleet.picture(obs, INVENTORY, mode)
        assert 'split_brain' in checks(result), mode
        assert 'Keep db2 (the newest timeline)' in fleet.summary(result)[0]


def test_a_stale_primary_being_rebuilt_is_the_fix_not_a_refusal():
    inventory = dict(INVENTORY, primary=['db2'], replicas=['db1'], rebuild=['db1'])
    obs = healthy(db1=pg(False, timeline=1), db2=pg(False, timeline=2), pgbouncer1=bouncer('db2'))
    result = fleet.picture(obs, inventory, 'site')
    assert result['differences'] == []
    assert result['primary'] == 'db2'
    # ... but not while PgBouncer still sends writes to it
    obs['pgbouncer1'] = bouncer('db1')
    assert checks(fleet.picture(obs, inventory, 'site')) == ['write_path']


def test_pgbouncer_on_a_standby_is_refused_naming_the_write_path():
    obs = healthy(pgbouncer1=bouncer('db2'))
    for mode in ('upgrade', 'rollback', 'switchover'):
        result = fleet.picture(obs, INVENTORY, mode)
        assert checks(result) == ['write_path'], mode
        assert 'Write path: PgBouncer pgbouncer1 points at db2, and db2 runs as a standby' in fleet.summary(result)[0]
    # site.yml converges PgBouncer onto the primary the inventory and the fleet agree on
    result = fleet.picture(obs, INVENTORY, 'site')
    assert result['differences'] == [] and 'this run points it at db1' in result['notes'][0]


def test_unreachable_primary_is_refused_except_by_failover():
    obs = healthy(db1={'unreachable': True, 'msg': 'does not answer: timed out'})
    assert checks(fleet.picture(obs, INVENTORY, 'site')) == ['primary']
    lost = dict(obs, db2=dict(obs['db2'], probes={'db1': {'answered': False, 'error': 'timed out'}}))
    result = fleet.picture(lost, INVENTORY, 'failover')
    assert result['differences'] == []
    assert 'db1 is taken as lost' in result['notes'][0]


def test_failover_refuses_a_host_whose_postgres_port_answers_without_ssh():
    obs = healthy(db1={'unreachable': True, 'msg': 'ssh: connect to host 10.0.0.11 port 22: Connection timed out'})
    obs['db2'] = dict(obs['db2'], probes={'db1': {'answered': True, 'error': None}})
    result = fleet.picture(obs, INVENTORY, 'failover')
    assert checks(result) == ['alive']
    assert 'its Postgres port accepts connections (asked from db2)' in result['differences'][0]['message']


def test_failover_refuses_an_unreachable_host_whose_port_nobody_asked():
    obs = healthy(db1={'unreachable': True, 'msg': 'timed out'})
    assert checks(fleet.picture(obs, INVENTORY, 'failover')) == ['alive']


def test_unreachable_pgbouncer_leaves_the_write_path_unknown():
    obs = healthy(pgbouncer1={'unreachable': True, 'msg': 'does not answer: timed out'})
    assert checks(fleet.picture(obs, INVENTORY, 'upgrade')) == ['write_path']


def test_processes_on_another_release_refuse_site_but_not_the_upgrade_to_it():
    obs = healthy(sidekiq1=app('v2.0.0'))
    result = fleet.picture(obs, INVENTORY, 'site')
    assert checks(result) == ['release']
    assert 'set mastodon_release_version to it' in fleet.summary(result)[0]
    assert fleet.picture(obs, dict(INVENTORY, release='v2.0.0'), 'site')['differences'] == []
    # resuming an upgrade half-way is allowed, three releases are not
    mixed = healthy(sidekiq1=app('v1.0.0', 'v2.0.0'))
    assert fleet.picture(mixed, dict(INVENTORY, release='v2.0.0'), 'upgrade')['differences'] == []
    assert 'stopped half-way' in fleet.summary(fleet.picture(mixed, INVENTORY, 'site'))[0]
    three = healthy(sidekiq1=app('v1.0.0', 'v2.0.0', 'v3.0.0'))
    assert checks(fleet.picture(three, dict(INVENTORY, release='v3.0.0'), 'upgrade')) == ['release']


def test_web_version_from_the_api_counts_without_the_v():
    obs = healthy(web1={'processes': [], 'web_version': '1.0.0'})
    assert fleet.picture(obs, INVENTORY, 'site')['differences'] == []
    obs = healthy(web1={'processes': [], 'web_version': '4.5.3'})
    assert checks(fleet.picture(obs, INVENTORY, 'site')) == ['release']


def test_bad_mode():
    with pytest.raises(ValueError):
        fleet.picture({}, INVENTORY, 'yolo')


def test_parse_pgbouncer_databases():
    text = "; managed\n[databases]\nmastodon_production = host=10.0.0.12 port=5432 dbname=mastodon_production\n"
    expected = {'host': '10.0.0.12', 'port': 5432, 'dbname': 'mastodon_production'}
    assert fleet.parse_pgbouncer_databases(text, 'mastodon_production') == expected
    assert fleet.parse_pgbouncer_databases(text, 'other') is None


def test_parse_edge_drained():
    text = """upstream fediops_web {
    zone fediops_web_peers 64k;
    server 10.0.0.31:3000 max_fails=3 fail_timeout=10s down;  # web1
    server 10.0.0.32:3000 max_fails=3 fail_timeout=10s;  # web2
    keepalive 16;
}
upstream fediops_streaming {
    server 10.0.0.31:4000 max_fails=3 fail_timeout=10s down;  # web1
}
"""
    assert fleet.parse_edge_drained(text) == ['web1']


def test_release_names():
    assert fleet.release_of_path('/home/mastodon/releases/v4.5.3') == 'v4.5.3'
    assert fleet.release_of_path('/home/mastodon/current') is None
    assert fleet.same_release('v4.5.3', '4.5.3')
    assert fleet.timeline_from_walfile('000000020000000000000003') == 2
