"""Series completion: once every instance of a series is stored, it is announced (``series_completed``).

A web or REST batch completes every series it stored into when it closes, and so does a DICOM
association when it is released, unless its hospital chose the quiet period
(``Hospital.dimse_complete_on_release``); STOW-RS leaves completion to the quiet period
(``complete_series_if_quiet``, one pending check per series). Instances that arrive after their series
completed complete it again (see ``complete_series``).
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.queueing import queue_task
from scans.models import Series, SeriesStatus
from scans.signals import series_completed


def complete_series(*, series):
    """Mark a receiving series received and announce it (``series_completed``), once per set of instances.

    A series that completed before and has since received instances it did not have (a PACS
    sending late slices, a second upload of missing files) completes again: its analysis is
    queued again and the new one covers every slice. Completing a series with nothing new changes
    nothing. Returns True if it completed the series.
    """
    with transaction.atomic():
        locked = Series.objects.select_for_update().get(pk=series.pk)
        instance_count = locked.instances.count()
        if locked.status == SeriesStatus.RECEIVING:
            locked.status = SeriesStatus.RECEIVED
        elif instance_count <= (locked.slices_total or 0):
            return False
        locked.completed_at = timezone.now()
        locked.slices_total = instance_count
        locked.save(update_fields=["status", "completed_at", "slices_total", "updated_at"])
        series_id = locked.pk
        transaction.on_commit(lambda: series_completed.send(sender=Series, series_id=series_id))
    series.status, series.completed_at, series.slices_total = locked.status, locked.completed_at, instance_count
    return True


def complete_series_if_quiet(*, series_id, now=None):
    """Complete a STOW-RS series once no instance arrived for ``SERIES_QUIET_SECONDS`` (late instances too).

    One check is pending per series at a time: while instances keep arriving it reschedules
    itself for the end of the new quiet period, so a 1,000-instance series costs a handful of
    checks, not one per instance. The lock and the status test in :func:`complete_series` make
    completion happen once.
    """
    now = now or timezone.now()
    series = Series.objects.filter(pk=series_id).first()
    if series is None:
        return False
    quiet_until = (series.last_instance_at or now) + timedelta(seconds=settings.SERIES_QUIET_SECONDS)
    if quiet_until > now:
        schedule_quiet_check(series_id, countdown=(quiet_until - now).total_seconds())
        return False
    Series.objects.filter(pk=series_id).update(quiet_check_pending=False)
    return complete_series(series=series)


def schedule_quiet_check(series_id, *, countdown):
    queue_task("scans.tasks.complete_series_if_quiet", countdown=countdown, series_id=series_id)


def mark_instances_arrived(batch, series_ids):
    """Note when instances last arrived; a series left to the quiet period gets its check (one at a time)."""
    Series.objects.filter(pk__in=series_ids).update(last_instance_at=timezone.now())
    if batch.completes_series_on_close:
        return
    for series_id in series_ids:
        if Series.objects.filter(pk=series_id, quiet_check_pending=False).update(quiet_check_pending=True):
            transaction.on_commit(
                lambda series_id=series_id: schedule_quiet_check(series_id, countdown=settings.SERIES_QUIET_SECONDS)
            )
