# RadAssist: `make run` starts the portal with demo data, `make test` runs the tests.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000
DICOM_PORT ?= 11112
OHIF_VERSION := 3.13.2
# base64 of the sha512 of npm's @ohif/app-$(OHIF_VERSION) tarball.
OHIF_SHA512 := WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==
OHIF_DIR := static-vendor/ohif

.PHONY: run test venv system-check browser compose-cli pdf-tools dicom-tools ohif lint bench clean

$(INSTALLED): requirements/*.txt
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements/dev.txt
	@touch $(INSTALLED)

venv: $(INSTALLED)

system-check: venv
	@$(PYTHON) -m portal.system_check

run: system-check ohif
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

# OHIF Viewer v3 for /viewer/ohif/: the built dist/ of npm's @ohif/app, fetched once (pinned, checksum checked).
# Its bundles load their chunks from "/", fixed at OHIF's build; sed makes them use window.PUBLIC_URL (the page
# sets it to the static files' path) or, in a web worker, the folder of the worker's own script, and makes the
# stylesheets' font URLs relative.
ohif:
	@test -f $(OHIF_DIR)/.installed-$(OHIF_VERSION) || { \
	  if ! command -v npm >/dev/null 2>&1; then echo "OHIF viewer not installed: npm is missing (sudo apt-get install npm)"; exit 0; fi; \
	  download=$$(mktemp -d) && (cd $$download && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null) \
	  && test "$$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
	    $$download/ohif-app-$(OHIF_VERSION).tgz)" = "$(OHIF_SHA512)" \
	  || { echo "@ohif/app@$(OHIF_VERSION): download failed or its sha512 is not the pinned one"; rm -rf $$download; exit 1; }; \
	  rm -rf $(OHIF_DIR) && mkdir -p $(OHIF_DIR) \
	  && tar -xzf $$download/ohif-app-$(OHIF_VERSION).tgz -C $(OHIF_DIR) --strip-components=2 package/dist \
	  && grep -l '__webpack_require__.p = "/";' $(OHIF_DIR)/*.js | xargs sed -i \
	    's%__webpack_require__.p = "/";%__webpack_require__.p = self.PUBLIC_URL || self.location.href.replace(/^blob:/, "").replace(/[?#].*$$/, "").replace(/[^/]*$$/, "");%' \
	  && sed -i 's%url(/%url(./%g' $(OHIF_DIR)/*.css \
	  && touch $(OHIF_DIR)/.installed-$(OHIF_VERSION); status=$$?; rm -rf $$download; exit $$status; }

test: system-check browser compose-cli pdf-tools dicom-tools ohif
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
