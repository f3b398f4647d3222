"""Fail early, with the fix in the message, when the machine lacks a system library RadAssist needs."""

import sys

MISSING_WEASYPRINT_LIBRARIES = """\
WeasyPrint (report PDFs) needs Pango, HarfBuzz and fontconfig from the system.
On Debian or Ubuntu install them with:
    sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libfontconfig1 fonts-dejavu-core
Error was: {error}"""


def main():
    try:
        import weasyprint  # noqa: F401
    except OSError as error:
        sys.exit(MISSING_WEASYPRINT_LIBRARIES.format(error=error))


if __name__ == "__main__":
    main()
