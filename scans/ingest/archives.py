"""The zip policy: what an archive and each of its entries must satisfy before anything is unpacked."""

import re

from django.conf import settings

from scans.ingest.parsing import FailureReason, RejectedFile

#: Zip entries are unpacked into memory up to this size, then to a temporary file.
SPOOL_MAX_MEMORY_BYTES = 2 * 1024 * 1024
#: Entries smaller than this are never called zip bombs, whatever their compression ratio.
ZIP_RATIO_EXEMPT_BYTES = 1024 * 1024
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def too_large(size):
    limit_mb = settings.INGEST_MAX_FILE_BYTES // (1024 * 1024)
    return RejectedFile(
        f"The file is {size / (1024 * 1024):,.0f} MB; files up to {limit_mb:,} MB are accepted.",
        failure_reason=FailureReason.OUT_OF_RESOURCES,
    )


def _unsafe_entry_name(entry_name):
    parts = re.split(r"[\\/]", entry_name)
    return (
        entry_name.startswith(("/", "\\"))
        or bool(WINDOWS_DRIVE.match(entry_name))
        or ".." in parts
        or "\x00" in entry_name
    )


def archive_rejection(entries):
    if len(entries) > settings.INGEST_MAX_ZIP_ENTRIES:
        return RejectedFile(
            f"The zip archive has {len(entries):,} files; archives of up to "
            f"{settings.INGEST_MAX_ZIP_ENTRIES:,} files are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    total = sum(entry.file_size for entry in entries)
    if total > settings.INGEST_MAX_ZIP_TOTAL_BYTES:
        return RejectedFile(
            f"The zip archive unpacks to {total / (1024 * 1024):,.0f} MB; archives of up to "
            f"{settings.INGEST_MAX_ZIP_TOTAL_BYTES // (1024 * 1024):,} MB unpacked are accepted.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    if not entries:
        return RejectedFile("The zip archive is empty.")
    return None


def entry_rejection(entry):
    if _unsafe_entry_name(entry.filename):
        return RejectedFile("The zip entry has an absolute path or one that climbs out of the archive (..).")
    if entry.flag_bits & 0x1:
        return RejectedFile("The zip entry is encrypted; send it without a password.")
    if entry.file_size > settings.INGEST_MAX_FILE_BYTES:
        return too_large(entry.file_size)
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size > ZIP_RATIO_EXEMPT_BYTES and ratio > settings.INGEST_MAX_ZIP_RATIO:
        return RejectedFile(
            f"The zip entry expands {ratio:,.0f} times (limit {settings.INGEST_MAX_ZIP_RATIO}); "
            "it looks like a zip bomb and was not unpacked.",
            failure_reason=FailureReason.OUT_OF_RESOURCES,
        )
    return None
