# RadAssist: `make run` starts the portal with demo data, `make test` runs the tests.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000
DICOM_PORT ?= 11112

.PHONY: run test venv system-check browser compose-cli pdf-tools dicom-tools lint bench clean

$(INSTALLED): requirements/*.txt
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements/dev.txt
	@touch $(INSTALLED)

venv: $(INSTALLED)

system-check: venv
	@$(PYTHON) -m portal.system_check

run: system-check
	$(PYTHON) manage.py run_portal --port $(PORT) --dicom-port $(DICOM_PORT)

# Debian's chromium for the browser tests (Playwright's own browser download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# Debian's docker-compose validates docker/docker-compose.yml in tests/deploy (Docker itself cannot run here).
compose-cli:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	  else echo "Deployment tests need Debian's docker-compose: sudo apt-get install docker-compose"; exit 1; fi; }

# Debian's poppler-utils: the report tests turn PDF pages into PNG with pdftoppm to check the key images.
pdf-tools:
	@command -v pdftoppm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; \
	  else echo "Report tests need Debian's poppler-utils: sudo apt-get install poppler-utils"; exit 1; fi; }

# Debian's dicom3tools (dciodvfy checks the SEG, SR and PDF objects we make), Orthanc with its DICOMweb
# plugin (the PACS the outbox tests send to by STOW-RS and C-STORE), and dcmtk (the DICOM listener tests
# talk to it with echoscu, storescu and findscu).
dicom-tools:
	@{ command -v dciodvfy && command -v Orthanc && test -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so \
	  && command -v storescu && command -v findscu; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools orthanc orthanc-dicomweb dcmtk >/dev/null; \
	  else echo "DICOM tests need dicom3tools, orthanc, orthanc-dicomweb and dcmtk: sudo apt-get install dicom3tools orthanc orthanc-dicomweb dcmtk"; exit 1; fi; }

test: system-check browser compose-cli pdf-tools dicom-tools
	$(PYTHON) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PYTHON) -m ruff check .
	$(VENV)/bin/lint-imports

bench: venv
	$(PYTHON) bench/inference.py
	$(PYTHON) bench/ingest.py
	$(PYTHON) manage.py bootstrap_models
	$(PYTHON) bench/pipeline.py
	$(PYTHON) bench/report_pdf.py
	$(PYTHON) bench/viewer.py

clean:
	rm -rf var staticfiles .pytest_cache
