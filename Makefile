# Developer entry points. The README's two set-up commands are `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0
# MITOGEN=1 runs playbooks with mitogen's strategy (opt-in accelerator, about 2x on a no-op run).
ifeq ($(MITOGEN),1)
export ANSIBLE_STRATEGY_PLUGINS := $(shell $(VENV)/bin/python -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")' 2>/dev/null)
export ANSIBLE_STRATEGY := mitogen_linear
endif
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
S ?=

.PHONY: fixture-artifacts help bootstrap bootstrap-lab lab lab-create lab-converge lab-first-backup lab-exercises lab-down lab-health molecule-lanes check lint yamllint ansible-lint unit fixture-test sanity molecule molecule-all build test

help:
	@echo "make lab        bootstrap this machine, create the lab, converge playbooks/site.yml, print health"
	@echo "make lab-down   remove the lab's containers and network"
	@echo "make test       lint, sanity, unit tests and every molecule scenario (what CI runs)"
	@echo "make check      the fast inner loop: lint + unit tests"
	@echo "make molecule S=<scenario>   one molecule scenario (scenarios: $(SCENARIOS))"
	@echo "make build      build the collection artifact"
	@echo "MITOGEN=1 make lab           the same with mitogen's strategy (opt-in accelerator)"

bootstrap:
	@bash lab/bootstrap.sh

# What the lab alone needs (no test tools): the first step of `make lab`.
bootstrap-lab:
	@bash lab/bootstrap.sh --lab

# Each step timed, the machine's set-up first (the table ends the output); the last step is the verdict: PASS, or
# FAIL and non-zero.
lab:
	@bash tests/stages.sh bootstrap-lab lab-create lab-converge lab-first-backup lab-health

lab-create:
	ansible-playbook lab/playbooks/create.yml
	ansible-playbook lab/playbooks/fixture_release.yml

# site.yml, then the fixture's admin token (the lab's stand-in for a token made in Mastodon's UI; the federation
# policy's playbooks/domain_blocks.yml calls the admin API with it).
lab-converge:
	ansible-playbook playbooks/site.yml lab/playbooks/fixture_admin_token.yml

lab-first-backup:
	ansible-playbook lab/playbooks/first_backup.yml

# Every exercise of docs/lab.md with its own check commands, against the running lab (after `make lab`).
lab-exercises: bootstrap
	pytest -p no:cacheprovider -v lab/tests/test_exercises.py

# End-to-end checks of the running lab: prints each check and PASS, or FAIL naming the failed checks (exit 2).
lab-health:
	@ansible-playbook lab/playbooks/health.yml

lab-down: bootstrap-lab
	ansible-playbook lab/playbooks/destroy.yml

yamllint:
	yamllint --strict .

ansible-lint:
	ansible-lint --profile production

lint: yamllint ansible-lint

unit:
	pytest -n 2 tests/unit

fixture-test: bootstrap
	bash lab/fixture/build.sh
	pytest lab/fixture/tests

check: bootstrap lint unit

sanity: bootstrap
	bash tests/sanity/run.sh

# The lab inventory points app hosts at the fixture's release artifacts; every preflight checks them.
fixture-artifacts:
	@bash lab/fixture/build.sh >/dev/null

molecule: bootstrap fixture-artifacts
	@test -n "$(S)" || { echo "usage: make molecule S=<scenario>  ($(SCENARIOS))"; exit 2; }
	molecule test -s $(S)

molecule-all: bootstrap fixture-artifacts
	@bash tests/stages.sh $(addprefix molecule:,$(SCENARIOS))

# Every scenario, LANES at a time (tests/molecule_lanes.sh: each in full, logs per scenario, a time table).
# One lane by default: on this 2-core machine the scenarios are CPU-bound, and two at a time made each about twice as
# slow and the whole longer (CI 59 min with one lane at stop 20; 81.5 min with two at stop 21, with one scenario
# more; postgresql 25 min and cdn_edge 18 min beside another scenario). LANES=2 for a machine with more cores.
# (Stop 22, one lane: fleet 40 min, postgresql 16, cdn_edge 11.5, mastodon_app 11.3 - over the 90 min limit; the
# app-tier and edge checks now run in the fleet scenario, on its converge.)
LANES ?= 1
molecule-lanes: bootstrap fixture-artifacts
	@bash tests/molecule_lanes.sh $(LANES) $(SCENARIOS)

build: bootstrap
	@rm -rf .cache/build && mkdir -p .cache/build
	ansible-galaxy collection build --force --output-path .cache/build .
	@bash tests/check_build.sh .cache/build/fediops-mastodon-*.tar.gz

# Each stage timed; the table of stage times and the total ends the log (also on failure).
# ansible-lint, sanity, unit, fixture-test and build run in a background lane at the lowest priority beside the
# molecule scenarios, in the CPU time the scenarios leave idle (tests/stages.sh says how); yamllint first, as it
# takes seconds and catches the commonest slip.
test: bootstrap
	@bash tests/stages.sh yamllint fixture-artifacts background:ansible-lint,sanity,unit,fixture-test,build molecule-lanes
