# Two entry points, as in the README: `make report` and `make test` (and `make fuzz`, short
# fuzz campaigns against the reference that the next `make report` lists).
# Everything is installed by these targets: Debian packages for the gssapi adapter (when run
# as root on a Debian-like system), then a virtual environment in .venv with the project.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# gss-ntlmssp is the NTLM mechanism under test; libkrb5-dev builds python-gssapi; chromium
# runs the browser tests of the HTML report; tshark checks that Wireshark dissects the report's
# pcaps as NTLMSSP.
SYSTEM_PACKAGES = gss-ntlmssp libkrb5-dev chromium tshark
# Installed means dpkg's "ii" for every package: `dpkg -s` also succeeds for a removed package
# whose configuration files remain ("rc").
PACKAGES_INSTALLED = [ "$$(dpkg-query -W -f='$${db:Status-Abbrev}\n' $(SYSTEM_PACKAGES) 2>/dev/null \
  | grep -c '^ii')" = "$(words $(SYSTEM_PACKAGES))" ]

# make fuzz: seconds per target, and the targets (docs/fuzzing.md).
FUZZ_TIME    ?= 10
FUZZ_TARGETS ?= verify decrypt descriptor handshake differential properties

.PHONY: report test fuzz lint system-packages clean

# wireshark-common (pulled in by tshark) asks whether non-root users may capture: answer "no"
# beforehand, so that the install never stops at a debconf prompt.
system-packages:
	@if $(PACKAGES_INSTALLED); then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages: $(SYSTEM_PACKAGES)"; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else \
	  echo "note: cannot install $(SYSTEM_PACKAGES) (needs root and apt-get); the gssapi adapter, the browser tests and the Wireshark check will be unavailable"; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@if command -v krb5-config >/dev/null 2>&1; then \
	  $(BIN)/pip install --quiet -e '.[test,gssapi]'; \
	else \
	  $(BIN)/pip install --quiet -e '.[test]'; \
	fi
	touch $(STAMP)

## report: conformance run against every available adapter; HTML report in reports/index.html
## (exit 0 even when implementations deviate: finding deviations is the job; 2 = harness error)
report: $(STAMP)
	$(BIN)/sspi-harness vectors check --adapter reference > reports/vectors.txt || { cat reports/vectors.txt; exit 1; }
	@$(BIN)/sspi-harness run --adapter all --out reports; status=$$?; \
	if [ $$status -eq 1 ]; then echo "some cases did not pass: open reports/index.html"; exit 0; fi; \
	exit $$status

## test: the project's own test suite
test: $(STAMP)
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

## fuzz: a short campaign per target against the reference, each in
## reports/fuzz/reference-<target>/ (campaign.json, campaign.html; regression vectors stay in
## the campaign folder). Findings do not fail the target (exit 0); a harness error does.
fuzz: $(STAMP)
	@for target in $(FUZZ_TARGETS); do \
	  out=reports/fuzz/reference-$$target; \
	  $(BIN)/sspi-harness fuzz --adapter reference --target $$target --time $(FUZZ_TIME) \
	    --out $$out --regressions $$out/regressions; status=$$?; \
	  if [ $$status -eq 1 ]; then echo "findings: open $$out/campaign.html"; \
	  elif [ $$status -ne 0 ]; then exit $$status; fi; \
	done; \
	echo "campaign pages: reports/fuzz/*/campaign.html ('make report' lists them in reports/index.html)"

lint: $(STAMP)
	$(BIN)/ruff check harness tests
	$(BIN)/mypy harness

clean:
	rm -rf $(VENV) reports/*.html reports/*.json reports/*.jsonl reports/*.xml reports/*.txt \
	  reports/fuzz
