"""The cdn_edge role's answer counter (roles/cdn_edge/files/fediops-edge-responses): log lines to counters.

The lines are in the role's log_format fediops_edge (templates/edge-http.conf.j2).
"""
import importlib.machinery
import importlib.util
import json
import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'cdn_edge', 'files', 'fediops-edge-responses')


@pytest.fixture(scope='module')
def counter():
    loader = importlib.machinery.SourceFileLoader('fediops_edge_responses', PATH)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def line(status, request='GET /health HTTP/2.0'):
    return ('203.0.113.7 [30/Nov/2026:03:00:00 +0000] "%s" %d 612 cache=- upstream=10.89.40.31:3000 '
            'upstream_status=%d rt=0.004 region=eu\n' % (request, status, status))


def run(counter, tmp_path, logs):
    textfile, state = tmp_path / 'out.prom', tmp_path / 'state.json'
    assert counter.main([str(textfile), str(state)] + ['%s=%s' % kv for kv in logs.items()]) == 0
    values = {}
    for text in textfile.read_text().splitlines():
        if not text.startswith('#'):
            name, value = text.split()
            values[name] = int(value)
    return values


def total(server, code_class):
    return 'fediops_edge_responses_total{server="%s",code_class="%s"}' % (server, code_class)


def test_statuses_are_counted_by_class_and_a_quote_in_the_request_does_not_confuse_it(counter):
    data = (line(200) + line(304) + line(502) + line(404, request='GET /a\\x22 404 1 cache= HTTP/1.1') + line(503)).encode()
    assert counter.count_classes(data) == {'1xx': 0, '2xx': 1, '3xx': 1, '4xx': 1, '5xx': 2}


def test_history_is_not_counted_and_new_lines_are_counted_once(counter, tmp_path):
    web = tmp_path / 'web.log'
    web.write_text(line(500) * 10)
    first = run(counter, tmp_path, {'web': web})
    assert first[total('web', '5xx')] == 0
    assert set(first) == {total('web', c) for c in ('1xx', '2xx', '3xx', '4xx', '5xx')}
    with web.open('a') as f:
        f.write(line(200) * 3 + line(502))
    assert run(counter, tmp_path, {'web': web})[total('web', '2xx')] == 3
    again = run(counter, tmp_path, {'web': web})
    assert again[total('web', '2xx')] == 3 and again[total('web', '5xx')] == 1


def test_a_line_being_written_waits_for_its_end(counter, tmp_path):
    web = tmp_path / 'web.log'
    web.write_text('')
    run(counter, tmp_path, {'web': web})
    whole = line(503)
    with web.open('a') as f:
        f.write(whole[:20])
    assert run(counter, tmp_path, {'web': web})[total('web', '5xx')] == 0
    with web.open('a') as f:
        f.write(whole[20:])
    assert run(counter, tmp_path, {'web': web})[total('web', '5xx')] == 1


def test_a_rotated_log_is_finished_then_the_new_one_read_from_its_start(counter, tmp_path):
    web = tmp_path / 'web.log'
    web.write_text('')
    run(counter, tmp_path, {'web': web})
    with web.open('a') as f:
        f.write(line(200) * 2)
    run(counter, tmp_path, {'web': web})
    with web.open('a') as f:
        f.write(line(500))  # written before logrotate renamed the file
    os.rename(web, str(web) + '.1')
    web.write_text(line(200) * 4)
    values = run(counter, tmp_path, {'web': web})
    assert values[total('web', '5xx')] == 1
    assert values[total('web', '2xx')] == 6


def test_a_truncated_log_is_read_from_its_start(counter, tmp_path):
    web = tmp_path / 'web.log'
    web.write_text(line(200) * 5)
    run(counter, tmp_path, {'web': web})
    web.write_text(line(502))
    assert run(counter, tmp_path, {'web': web})[total('web', '5xx')] == 1


def test_a_log_that_appears_later_is_counted_from_its_first_line(counter, tmp_path):
    media = tmp_path / 'media.log'
    values = run(counter, tmp_path, {'media': media})
    assert values[total('media', '2xx')] == 0
    media.write_text(line(200) + line(404))
    values = run(counter, tmp_path, {'media': media})
    assert values[total('media', '2xx')] == 1 and values[total('media', '4xx')] == 1


def test_counters_survive_in_the_state_file_and_servers_are_separate(counter, tmp_path):
    web, media = tmp_path / 'web.log', tmp_path / 'media.log'
    web.write_text('')
    media.write_text('')
    run(counter, tmp_path, {'web': web, 'media': media})
    with web.open('a') as f:
        f.write(line(500))
    with media.open('a') as f:
        f.write(line(200) * 2)
    values = run(counter, tmp_path, {'web': web, 'media': media})
    assert values[total('web', '5xx')] == 1 and values[total('media', '2xx')] == 2
    assert values[total('media', '5xx')] == 0
    state = json.loads((tmp_path / 'state.json').read_text())
    assert state['counts']['media']['2xx'] == 2


def test_bad_arguments_print_the_usage(counter, capsys):
    assert counter.main(['/tmp/x.prom']) == 2
    assert 'Usage' in capsys.readouterr().err
