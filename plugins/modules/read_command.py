# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: plugins/action/read_command.py runs the command through the connection, so there is no module
# code to ship to the host.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: read_command
short_description: Run a command that only reads, without a module run
version_added: 0.2.0
description:
  - Runs one command on the host and returns its exit status and output, as C(ansible.builtin.command) does, for
    commands that change nothing (C(nft list), C(readlink), C(dpkg-query), C(systemctl is-active), C(psql -c SHOW)).
  - The command goes straight to the host's C(/bin/sh) through the connection, as the shell lines Ansible itself runs
    do, so no Python module is sent or started. On a converged fleet that is nearly all of such a task's cost.
  - The task never reports C(changed). It runs in check mode as well, because it only reads; that is the caller's
    promise, not something this plugin can check, so never give it a command that acts.
  - The command runs with C(LC_ALL=C), from O(chdir) when given, with its standard input on C(/dev/null). The task's
    C(environment) keyword applies, and O(env) on top of it.
  - Become applies as for any task.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The command runs in check mode too, with the same result; it must only read.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  argv:
    description:
      - The program and its arguments, run without a shell (each element is one argument, nothing is expanded).
      - Exactly one of O(argv) and O(cmd) is required.
    type: list
    elements: str
  cmd:
    description:
      - A command line run by C(/bin/sh -c), so pipes, redirections such as C(2>/dev/null), variables and C(&&)
        work. Quote what comes from variables with the C(quote) filter.
      - Exactly one of O(argv) and O(cmd) is required.
    type: str
  chdir:
    description:
      - The directory to run the command in.
      - When it cannot be entered the command does not run and RV(rc) is C(125).
    type: path
  env:
    description:
      - Variables exported to the command, on top of the task's C(environment) keyword and C(LC_ALL=C) (an C(LC_ALL)
        given here wins). Values are passed as strings, quoted.
    type: dict
    default: {}
  ok_rcs:
    description:
      - The exit statuses that count as success. Any other fails the task with a message naming RV(rc).
      - C(failed_when) on the task works as on any task and overrides this.
    type: list
    elements: int
    default: [0]
notes:
  - RV(stdout) and RV(stderr) stay apart even when the connection runs the command on a terminal, as the ssh
    connection does unless pipelining is enabled. The command's stderr is held by the shell and sent after its
    output, behind a random marker line the action removes. How the two were interleaved is not kept.
  - With pipelining enabled (C(ANSIBLE_PIPELINING), C(ansible_pipelining)) the command never sees a terminal, as under
    C(ansible.builtin.command). Without it the command's stdout may be a terminal, so give programs that page or
    colour for a terminal the option against it, such as C(systemctl --no-pager).
  - Carriage returns a terminal adds at line ends are removed, as are trailing line ends, so RV(stdout) compares
    equal to what C(ansible.builtin.command) returns.
  - What the connection itself writes to stderr (ssh, sudo) is added to RV(stderr); a message sudo writes on a
    terminal can come first in RV(stdout).
  - Options that make a command act (C(creates), C(removes), C(stdin)) are not accepted; use
    C(ansible.builtin.command).
seealso:
  - module: ansible.builtin.command
"""

EXAMPLES = r"""
- name: Read the firewall table the kernel holds
  fediops.mastodon.read_command:
    argv: [nft, list, table, inet, fediops]
    ok_rcs: [0, 1]
  register: live_table

- name: Read which release current points at
  fediops.mastodon.read_command:
    argv: [readlink, -f, /opt/mastodon/current]
  register: current_release

- name: Ask Postgres whether it is a standby, as postgres
  fediops.mastodon.read_command:
    argv: [psql, -XAtc, SELECT pg_is_in_recovery()]
    env:
      PGPORT: "5433"
  become: true
  become_user: postgres
  register: in_recovery

- name: Count the clusters, with a pipe
  fediops.mastodon.read_command:
    cmd: pg_lsclusters --no-header | wc -l
  register: clusters
"""

RETURN = r"""
cmd:
  description: The command as the task gave it, O(argv) or O(cmd).
  returned: always
  type: raw
  sample: [readlink, -f, /opt/mastodon/current]
rc:
  description: The exit status of the command (C(125) when O(chdir) could not be entered).
  returned: always
  type: int
  sample: 0
stdout:
  description: What the command wrote to standard output, without trailing line ends.
  returned: always
  type: str
  sample: /opt/mastodon/releases/v4.3.2
stdout_lines:
  description: RV(stdout) split into lines.
  returned: always
  type: list
  elements: str
  sample: [/opt/mastodon/releases/v4.3.2]
stderr:
  description:
    - What the command wrote to standard error, without trailing line ends.
    - Then what the connection wrote to stderr, if anything.
  returned: always
  type: str
  sample: ""
stderr_lines:
  description: RV(stderr) split into lines.
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: Why the task failed, naming RV(rc).
  returned: when RV(rc) is not one of O(ok_rcs)
  type: str
  sample: rc 2, which is not one of ok_rcs (0)
"""
