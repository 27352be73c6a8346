# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv with uv (installed with pip when missing) from the committed uv.lock.
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .uvboot/bin/uv)

.PHONY: demo test setup broker browser lint clean

.uvboot/bin/uv:
	$(PY) -m venv .uvboot && .uvboot/bin/pip install -q uv

setup: $(UV)
	$(UV) sync --frozen --quiet

# Mosquitto is the broker of record; when it is missing and we may use apt, install it.
# When that is not possible the demo falls back to an embedded Python broker and says so.
# openssl and mosquitto_passwd (in the mosquitto package) make the TLS tests' certificates
# and password files.
broker:
	@command -v mosquitto >/dev/null && command -v openssl >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto openssl >/dev/null) \
	  || echo "mosquitto/openssl not installed and cannot be installed here"; }

# The report's browser tests open pages in Debian's headless Chromium; Noto CJK renders
# the Chinese report. Installed when missing and apt may be used; the tests skip loudly
# when it cannot be.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "chromium/fonts-noto-cjk not installed and cannot be installed here"; }

demo: setup broker
	$(UV) run --frozen wattline demo

test: setup broker browser
	$(UV) run --frozen pytest -q

lint: setup
	$(UV) run --frozen ruff check . && $(UV) run --frozen ruff format --check . && $(UV) run --frozen mypy .

clean:
	rm -rf .venv .uvboot data .pytest_cache .ruff_cache .mypy_cache
