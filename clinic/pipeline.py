"""One series from upload to the patient's download: every hand-off between stages is wired here.

Each stage stores its result and, once its transaction has committed, announces it with a signal of
its own; nothing is passed in memory between processes, and each task can be delivered twice
safely (it is idempotent on its natural key). Read top to bottom:

1. **Ingest** (``scans``, web or listener process). A file arrives by the upload form, the REST API
   (``POST /api/v1/uploads/``) or DICOMweb STOW-RS; ``scans.ingest.ingest_files`` checks it, files it
   under patient, study and series and writes the rows a group at a time. An instance sent by DICOM
   C-STORE to the listener (``manage.py run_dicom_listener``, ``scans.dimse``) goes through the same
   ingest one instance at a time (``scans.ingest.IngestStream``), as each C-STORE is answered with its
   outcome. A series completes when its web or REST batch closes (``scans.ingest.close_batch``), when the
   DICOM association that sent it is released (or after the quiet period, as the hospital chose), when a
   STOW-RS series has been quiet for
   ``SERIES_QUIET_SECONDS`` (``scans.tasks.complete_series_if_quiet`` on the ``ingest`` queue), or when an
   abandoned batch is closed by ``scans.tasks.close_abandoned_batches`` (Celery beat). Completion sends
   ``scans.signals.series_completed``.
2. **Analysis queued** (``ingest`` queue): :func:`analyse_completed_series` below sends
   ``ml.tasks.queue_series_analysis``, which pins the registry's champion versions on a new
   ``ml.Analysis`` (``ml.services.queue_analysis``) and queues ``ml.tasks.analyse_series``.
3. **Analysis run** (``gpu`` queue): ``ml.tasks.analyse_series`` claims the analysis, runs the networks
   (``ml.services.run_analysis``), stores probabilities, masks, key images and measurements, and sends
   ``ml.signals.analysis_succeeded``.
4. **Report draft and results out** (``reports`` queue): :func:`draft_report_for_analysis` below sends
   ``reports.tasks.create_draft_report``, which makes or updates the study's draft and queues its PDF
   (``reports.tasks.render_report_pdf``); :func:`dicom_results_for_analysis` sends
   ``reports.tasks.make_result_objects``, which stores a DICOM SEG and a TID 1500 SR in the study and
   puts them in the outbox of each of the hospital's destinations (``reports.tasks.send_outbox_item``).
5. **Review and sign-off** (web): the doctor reads the study page (``clinic.views.study_detail``), edits
   and signs (``reports.services.sign_report``); signing renders the final PDF, stores it as a DICOM
   Encapsulated PDF (``reports.tasks.make_signed_report_object``, into the outbox too) and notifies the
   patient.
6. **Patient download** (web): ``/my/reports/`` lists the patient's signed reports
   (``reports.views.patient_reports``); the PDF download is checked, audited and served privately.

The web process imports this module (through ``ClinicConfig.ready``) but never TensorFlow or MLflow:
the tasks' modules import neither at module level.
"""

from django.dispatch import receiver

from ml.signals import analysis_succeeded
from ml.tasks import queue_series_analysis
from reports.tasks import create_draft_report, make_result_objects
from scans.signals import series_completed


@receiver(series_completed, dispatch_uid="pipeline.analyse_completed_series")
def analyse_completed_series(sender, *, series_id, **kwargs):
    """Stage 1 → 2: a complete series gets its analysis queued (the lookup of model versions imports
    MLflow, so it runs on an ``ingest`` worker, not in the web process that received the files)."""
    queue_series_analysis.delay(series_id=series_id)


@receiver(analysis_succeeded, dispatch_uid="pipeline.draft_report_for_analysis")
def draft_report_for_analysis(sender, *, analysis_id, **kwargs):
    """Stage 3 → 4: a successful, current analysis gets its report drafted."""
    create_draft_report.delay(analysis_id=analysis_id)


@receiver(analysis_succeeded, dispatch_uid="pipeline.dicom_results_for_analysis")
def dicom_results_for_analysis(sender, *, analysis_id, **kwargs):
    """Stage 3 → 4: the analysis's DICOM SEG and SR are stored in its study and queued for the hospital's
    destinations (``reports.dicom_results``, ``reports.outbox``)."""
    make_result_objects.delay(analysis_id=analysis_id)
