# Two entry points, as in the README: `make report` and `make test`.
# Everything is installed into .venv by these targets; nothing is installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: report test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## report: conformance run against every available adapter; HTML report in reports/index.html
report: $(STAMP)
	$(BIN)/sspi-harness vectors check --adapter reference > reports/vectors.txt || { cat reports/vectors.txt; exit 1; }
	$(BIN)/sspi-harness run --adapter all --out reports

## test: the project's own test suite
test: $(STAMP)
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check harness tests
	$(BIN)/mypy harness

clean:
	rm -rf $(VENV) reports/*.html reports/*.json reports/*.jsonl reports/*.xml reports/*.txt
