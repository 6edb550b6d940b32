#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: sidekiq_queues
short_description: Report Sidekiq queue depth, latency, busy workers and process heartbeats
version_added: 0.1.0
description:
  - Reads Sidekiq's keys in Redis directly (no Ruby needed) and reports the depth and latency
    of each queue, the busy threads of each Sidekiq process and the age of its heartbeat.
  - Parses both job timestamp formats, float seconds (Sidekiq 7 and older, Mastodon 4.4 and
    older) and integer milliseconds (Sidekiq 8, Mastodon 4.5 and later).
  - Can wait until the selected processes have no busy threads (after sending them C(TSTP)) or
    until queues are empty, and can fail when a queue's latency exceeds a limit.
  - Never writes to Redis.
extends_documentation_fragment:
  - fediops.mastodon.redis
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  queues:
    description:
      - Queues to report. By default, every queue registered in Sidekiq's C(queues) set.
      - A listed queue that was never used is reported with depth 0.
    type: list
    elements: str
  hostname:
    description:
      - Only consider Sidekiq processes whose reported hostname equals this value (busy counts
        and waits then apply to that host only).
    type: str
  pids:
    description:
      - Only consider Sidekiq processes whose reported PID is in this list (with O(hostname), the
        processes of one host's systemd units, for example the ones a scale-in is about to stop).
    type: list
    elements: int
  stale_after:
    description:
      - A process whose last heartbeat is older than this many seconds is reported as stale and
        does not count as alive. Sidekiq beats every 10 seconds.
    type: int
    default: 60
  max_latency:
    description:
      - Fail when any reported queue's oldest job has waited longer than this many seconds.
    type: float
  queue_max_latency:
    description:
      - Per-queue latency limits in seconds, overriding O(max_latency) for those queues.
    type: dict
    default: {}
  wait_until:
    description:
      - V(idle) waits until the selected live processes have no busy threads.
      - V(empty) waits until the reported queues have depth 0.
      - V(none) reads once.
    type: str
    choices: [ none, idle, empty ]
    default: none
  busy_jobs:
    description:
      - Also read the running jobs of the selected live processes (see RV(busy_jobs)).
      - With O(wait_until=idle) they are always read, and a timeout names them in its message.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for O(wait_until) before failing.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between reads while waiting.
    type: float
    default: 1.0
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Read queue latency on the Sidekiq Redis
  fediops.mastodon.sidekiq_queues:
    redis_host: 127.0.0.1
    redis_password: "{{ redis_persistent_password }}"
  register: sq

- name: Wait for this host's quieted Sidekiq processes to finish their jobs
  fediops.mastodon.sidekiq_queues:
    redis_host: 127.0.0.1
    hostname: "{{ ansible_facts.hostname }}"
    wait_until: idle
    timeout: 120

- name: Refuse to go on while ingress is more than a minute behind
  fediops.mastodon.sidekiq_queues:
    redis_unix_socket: /run/redis/redis.sock
    queues: [default, ingress, push, pull]
    max_latency: 300
    queue_max_latency:
      ingress: 60
'''

RETURN = r'''
queues:
  description: Per queue, its depth, latency in seconds and the oldest job's enqueue time (epoch seconds).
  returned: always
  type: dict
  sample: {"default": {"depth": 3, "latency": 1.52, "oldest_enqueued_at": 1767225600.5, "error": null}}
processes:
  description: Sidekiq processes with identity, hostname, pid, queues, concurrency, busy threads, heartbeat age and staleness.
  returned: always
  type: list
  elements: dict
  sample: [{"identity": "web1:1234:abc", "hostname": "web1", "busy": 0, "beat_age": 2.1, "stale": false, "quiet": true}]
summary:
  description: Totals over the reported queues and the selected processes.
  returned: always
  type: dict
  sample: {"enqueued": 3, "max_latency": 1.52, "busy": 0, "processes": 2, "stale_processes": 0, "quiet_processes": 1}
violations:
  description: Queues over their latency limit, each with check, reason, threshold and value.
  returned: always
  type: list
  elements: dict
busy_jobs:
  description:
    - The jobs the selected live processes run, longest-running first, read from each process's
      work hash (C(<identity>:work), C(<identity>:workers) before Sidekiq 6.5) - class (the wrapped
      class for ActiveJob), queue, jid, start (epoch seconds; Sidekiq 8's milliseconds converted)
      and seconds running. Read when O(wait_until=idle) and when O(busy_jobs) is set.
  returned: always
  type: list
  elements: dict
  sample: [{"identity": "sidekiq1:4242:default", "tid": "owx2k", "queue": "default", "class": "LinkCrawlWorker",
            "jid": "0f1e2d3c4b5a69788796a5b4", "run_at": 1767225600.0, "running_for": 312.0}]
busy_summary:
  description: One line naming every job of O(busy_jobs) (class, queue, jid, seconds running, process); C(none) when idle.
  returned: always
  type: str
waited:
  description: Seconds spent waiting for O(wait_until).
  returned: always
  type: float
commands:
  description: Redis commands issued (the first 200).
  returned: always
  type: list
  elements: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import (
    redis_common_argument_spec, redis_connect)
from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq


def read_state(client, params):
    ns = params['redis_namespace']
    queues = sidekiq.queue_stats(client, ns, names=params['queues'])
    if params['queues'] is not None:
        queues = dict((k, v) for k, v in queues.items() if k in params['queues'])
    processes = sidekiq.process_stats(client, ns, stale_after=params['stale_after'])
    if params['hostname']:
        processes = [p for p in processes if p['hostname'] == params['hostname']]
    if params['pids'] is not None:
        processes = [p for p in processes if p['pid'] is not None and int(p['pid']) in params['pids']]
    return queues, processes, sidekiq.summarize(queues, processes)


def main():
    argument_spec = redis_common_argument_spec()
    argument_spec.update(
        queues=dict(type='list', elements='str'),
        hostname=dict(type='str'),
        pids=dict(type='list', elements='int'),
        stale_after=dict(type='int', default=60),
        max_latency=dict(type='float'),
        queue_max_latency=dict(type='dict', default={}),
        wait_until=dict(type='str', default='none', choices=['none', 'idle', 'empty']),
        timeout=dict(type='int', default=300),
        poll_interval=dict(type='float', default=1.0),
        busy_jobs=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params['timeout'] < 0 or params['poll_interval'] <= 0:
        module.fail_json(msg='timeout must be >= 0 and poll_interval > 0')
    try:
        per_queue = dict((k, float(v)) for k, v in params['queue_max_latency'].items())
    except (TypeError, ValueError):
        module.fail_json(msg='queue_max_latency values must be numbers of seconds')

    client = sidekiq.RecordingRedis(redis_connect(module))
    started = time.time()
    deadline = started + params['timeout']
    while True:
        try:
            queues, processes, summary = read_state(client, params)
        except Exception as e:  # pylint: disable=broad-except
            module.fail_json(msg='Reading Sidekiq state from Redis failed: %s' % e, commands=client.commands)
        if params['wait_until'] == 'idle':
            done = summary['busy'] == 0
        elif params['wait_until'] == 'empty':
            done = summary['enqueued'] == 0
        else:
            done = True
        if done or time.time() >= deadline:
            break
        time.sleep(params['poll_interval'])
    waited = round(time.time() - started, 3)

    violations = sidekiq.latency_violations(queues, params['max_latency'], per_queue)
    jobs = []
    busy_by_process = dict((p['identity'], p['busy']) for p in processes if p['busy'] and not p['stale'])
    if params['busy_jobs'] or params['wait_until'] == 'idle':
        try:
            jobs = sidekiq.busy_jobs(client, sorted(busy_by_process), params['redis_namespace'])
        except Exception as e:  # pylint: disable=broad-except
            module.fail_json(msg='Reading the running jobs from Redis failed: %s' % e, commands=client.commands)
    busy_summary = sidekiq.describe_busy_jobs(jobs, busy_by_process)
    result = dict(changed=False, queues=queues, processes=processes, summary=summary,
                  violations=violations, busy_jobs=jobs, busy_summary=busy_summary, waited=waited, commands=client.commands)
    if not done:
        if params['wait_until'] == 'idle':
            module.fail_json(msg='Sidekiq processes still busy after %ss, running: %s' % (params['timeout'], busy_summary), **result)
        module.fail_json(msg='Sidekiq queues not empty after %ss: %d jobs enqueued' % (params['timeout'], summary['enqueued']), **result)
    if violations:
        module.fail_json(msg='Sidekiq latency over the limit: %s' % '; '.join(
            '%s (limit %s s)' % (v['reason'], v['threshold']) for v in violations), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
