"""The ingest service with real files: pydicom's shipped samples and generated CT series."""

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.db import IntegrityError, OperationalError
from django.utils import timezone
from PIL import Image

from accounts.models import Patient
from scans.ingest import (
    FailureReason,
    close_abandoned_batches,
    close_batch,
    complete_series,
    complete_series_if_quiet,
    ingest_file,
    ingest_files,
    open_batch,
    writer,
)
from scans.models import FileOutcome, Instance, Series, SeriesStatus, Study, UploadBatch, UploadedFile
from tests.factories import PatientFactory
from tests.scans.conftest import pydicom_file

pytestmark = pytest.mark.django_db


def batch_for(world, *, user=None, source=UploadBatch.Source.WEB, patient=None):
    return open_batch(hospital=world.hospital, uploaded_by=user or world.doctor, source=source, patient=patient)


def ingest_path(batch, path, **kwargs):
    with open(path, "rb") as fileobj:
        return ingest_file(batch=batch, name=path.name, fileobj=fileobj, **kwargs)


def only(results):
    assert len(results) == 1
    return results[0]


def png_bytes(value, size=12):
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def noisy_png():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(entries, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def ultrasound_copy(path, directory):
    """A generated CT slice relabelled as ultrasound: a modality the portal does not accept."""
    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.Modality = "US"
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    target = Path(directory) / "ultrasound.dcm"
    dataset.save_as(target)
    return target


def test_good_files_are_kept_while_bad_ones_are_rejected_with_their_reason(north, write_ct_series, private_storage,
                                                                          tmp_path):
    batch = batch_for(north)
    paths = write_ct_series(slices=3)
    results = [only(ingest_path(batch, path)) for path in paths]
    results += [
        only(ingest_path(batch, pydicom_file("MR_small.dcm"))),
        only(ingest_path(batch, pydicom_file("test-SR.dcm"))),
        only(ingest_path(batch, pydicom_file("rtplan.dcm"))),
        only(ingest_path(batch, ultrasound_copy(paths[0], tmp_path))),
        only(ingest_file(batch=batch, name="notes.txt", fileobj=io.BytesIO(b"just some text " * 20))),
    ]
    outcomes = [result.outcome for result in results]
    # MR is accepted at ingest since brain MRI has models (ml.catalogue decides which series are analysed).
    assert outcomes == [FileOutcome.STORED] * 4 + [FileOutcome.REJECTED] * 4
    mr_series = results[3].instance.series
    assert (mr_series.modality, mr_series.scanning_sequence, mr_series.sequence_variant) == ("MR", "SE", "NONE")
    assert mr_series.inversion_time is None
    sr, rtplan, ultrasound, text = results[4:]
    assert "no pixel data" in sr.reason and sr.failure_reason == FailureReason.SOP_CLASS_NOT_SUPPORTED
    assert "no pixel data" in rtplan.reason
    assert "Modality US is not accepted here (accepted: CT, MR)" in ultrasound.reason
    assert ultrasound.failure_reason == 0x0122
    assert "Not a DICOM file" in text.reason and text.failure_reason == 0xC000
    assert batch.files.filter(outcome=FileOutcome.REJECTED).count() == 4
    assert Instance.objects.count() == 4
    stored = [path for path in private_storage.rglob("*") if path.is_file()]
    assert len(stored) == 4
    instance = results[0].instance
    import hashlib

    assert instance.sha256 == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    assert instance.file_size == paths[0].stat().st_size


def test_patient_is_matched_or_created_from_the_dicom_patient_id(north, write_ct_series):
    existing = PatientFactory(hospital=north.hospital, mrn="MRN-KNOWN-7")
    batch = batch_for(north)
    for path in write_ct_series(patient_id="MRN-KNOWN-7", slices=1):
        assert only(ingest_path(batch, path)).instance.series.study.patient == existing
    for path in write_ct_series(patient_id="MRN-NEW-8", patient_name="Smith^Anna^Marie", slices=1):
        only(ingest_path(batch, path))
    created = Patient.objects.get(hospital=north.hospital, mrn="MRN-NEW-8")
    assert created.full_name == "Anna Marie Smith"


def test_instances_are_grouped_by_uids_and_sorted_by_position(north, write_ct_series):
    batch = batch_for(north)
    first = write_ct_series(slices=4, series_number=1)
    second = write_ct_series(slices=2, series_number=2)
    for path in reversed(first + second):
        assert only(ingest_path(batch, path)).outcome == FileOutcome.STORED
    assert Study.objects.count() == 2  # each generated series has its own study UID
    series = Series.objects.get(series_number=1)
    ordered = list(series.instances.in_slice_order().values_list("instance_number", flat=True))
    assert ordered == [1, 2, 3, 4]
    locations = list(series.instances.in_slice_order().values_list("slice_location", flat=True))
    assert locations == sorted(locations) and len(set(locations)) == 4
    instance = series.instances.first()
    assert instance.pixel_spacing and instance.image_orientation_patient and instance.rescale_intercept == -1024


def test_same_sop_instance_again_is_a_duplicate_never_a_second_row(north, write_ct_series, private_storage):
    path = write_ct_series(slices=1)[0]
    first = only(ingest_path(batch_for(north), path))
    again = only(ingest_path(batch_for(north), path))
    assert again.outcome == FileOutcome.DUPLICATE and again.instance == first.instance
    assert Instance.objects.count() == 1
    assert len([p for p in private_storage.rglob("*") if p.is_file()]) == 1


def test_concurrent_duplicate_losing_on_the_constraint_leaves_no_file(north, write_ct_series, private_storage,
                                                                      monkeypatch):
    """Two uploads of one instance at once: the loser hits the unique constraint after its pre-check."""
    path = write_ct_series(slices=1)[0]
    winner = only(ingest_path(batch_for(north), path))
    real_filter = Instance.objects.for_hospital
    calls = []

    def first_lookup_misses(hospital):
        calls.append(hospital)
        return real_filter(hospital).none() if len(calls) == 1 else real_filter(hospital)

    monkeypatch.setattr(Instance.objects, "for_hospital", first_lookup_misses)
    loser = only(ingest_path(batch_for(north), path))
    assert loser.outcome == FileOutcome.DUPLICATE and loser.instance == winner.instance
    assert Instance.objects.count() == 1
    assert len([p for p in private_storage.rglob("*") if p.is_file()]) == 1


def test_failure_after_storing_leaves_no_file_and_no_row(north, write_ct_series, private_storage, monkeypatch):
    def broken_insert(*args, **kwargs):
        raise IntegrityError("database went away")

    monkeypatch.setattr(Instance.objects, "bulk_create", broken_insert)
    result = only(ingest_path(batch_for(north), write_ct_series(slices=1)[0]))
    assert result.outcome == FileOutcome.REJECTED and result.failure_reason == FailureReason.PROCESSING_FAILURE
    assert "error on our side" in result.reason
    assert not [p for p in private_storage.rglob("*") if p.is_file()]
    assert not Series.objects.exists() and not Study.objects.exists()
    assert UploadedFile.objects.get().outcome == FileOutcome.REJECTED


def open_files(paths):
    return [(path.name, open(path, "rb")) for path in paths]


def test_many_files_are_written_in_groups_with_one_outcome_per_file_in_order(
    north, write_ct_series, private_storage, monkeypatch
):
    """A request of many files: groups of three here, a duplicate inside the request and one from before."""
    monkeypatch.setattr(writer, "GROUP_MAX_FILES", 3)
    paths = write_ct_series(slices=7)
    only(ingest_path(batch_for(north), paths[4]))
    batch = batch_for(north)
    files = open_files(paths[:3]) + [("notes.txt", io.BytesIO(b"not an image " * 20))] + open_files(paths[3:])
    files.insert(2, (paths[0].name + " again", open(paths[0], "rb")))
    results = [only(file_results) for file_results in ingest_files(batch=batch, files=files)]
    outcomes = [result.outcome for result in results]
    assert outcomes == [FileOutcome.STORED] * 2 + [FileOutcome.DUPLICATE] + [FileOutcome.STORED] + [
        FileOutcome.REJECTED, FileOutcome.STORED, FileOutcome.DUPLICATE, FileOutcome.STORED, FileOutcome.STORED
    ]
    assert results[2].instance == results[0].instance
    assert Instance.objects.count() == 7 and Series.objects.count() == 1
    assert len([path for path in private_storage.rglob("*") if path.is_file()]) == 7
    assert list(batch.files.values_list("outcome", flat=True)) == [str(outcome) for outcome in outcomes]
    assert all(fileobj.closed for _, fileobj in files)
    series = Series.objects.get()
    assert list(series.instances.in_slice_order().values_list("instance_number", flat=True)) == list(range(1, 8))


def test_a_group_that_cannot_be_written_is_rejected_and_the_other_groups_are_kept(
    north, write_ct_series, private_storage, monkeypatch
):
    monkeypatch.setattr(writer, "GROUP_MAX_FILES", 2)
    real_insert = Instance.objects.bulk_create
    calls = []

    def second_insert_fails(rows, *args, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OperationalError("disk I/O error")
        return real_insert(rows, *args, **kwargs)

    monkeypatch.setattr(Instance.objects, "bulk_create", second_insert_fails)
    paths = write_ct_series(slices=6)
    results = [only(file_results) for file_results in ingest_files(batch=batch_for(north), files=open_files(paths))]
    assert [result.outcome for result in results] == [FileOutcome.STORED] * 2 + [FileOutcome.REJECTED] * 2 + [
        FileOutcome.STORED
    ] * 2
    assert all("error on our side" in result.reason for result in results[2:4])
    stored_names = {Path(name).name for name in Instance.objects.values_list("file", flat=True)}
    assert {path.name for path in private_storage.rglob("*") if path.is_file()} == stored_names
    assert len(stored_names) == 4


def test_rows_are_written_with_a_few_queries_whatever_the_number_of_files(
    north, write_ct_series, django_assert_max_num_queries
):
    paths = write_ct_series(slices=40)
    batch = batch_for(north)
    with django_assert_max_num_queries(20):
        results = ingest_files(batch=batch, files=open_files(paths))
    assert {only(file_results).outcome for file_results in results} == {FileOutcome.STORED}


def test_truncated_and_corrupted_files_are_rejected(north, write_ct_series, copy_of):
    batch = batch_for(north)
    path = write_ct_series(slices=1)[0]
    truncated = copy_of(path, "truncated.dcm")
    truncated.write_bytes(path.read_bytes()[:-100])
    header_cut = copy_of(path, "header-cut.dcm")
    header_cut.write_bytes(path.read_bytes()[:300])
    result = only(ingest_path(batch, truncated))
    assert result.outcome == FileOutcome.REJECTED and "truncated" in result.reason
    assert only(ingest_path(batch, header_cut)).outcome == FileOutcome.REJECTED
    assert not Instance.objects.exists()


def test_pydicom_truncated_sample_is_rejected(north, settings):
    settings.INGEST_ALLOWED_MODALITIES = {"MR"}
    result = only(ingest_path(batch_for(north), pydicom_file("MR_truncated.dcm")))
    assert result.outcome == FileOutcome.REJECTED and "truncated" in result.reason


COMPRESSED_SAMPLES = [
    "MR_small_RLE.dcm",  # RLE lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "693_J2KI.dcm",  # JPEG 2000 (lossy), CT
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPGExtended.dcm",  # JPEG extended (12-bit)
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless, first-order prediction (process 14 SV1)
    "SC_rgb_rle_2frame.dcm",  # RLE, two frames
]


@pytest.mark.parametrize("name", COMPRESSED_SAMPLES)
def test_compressed_transfer_syntaxes_are_decoded_and_stored(north, settings, name):
    settings.INGEST_ALLOWED_MODALITIES = {"CT", "MR", "OT", "NM"}
    result = only(ingest_path(batch_for(north, user=north.patient_user), pydicom_file(name)))
    assert result.outcome == FileOutcome.STORED, result.reason
    assert result.instance.transfer_syntax_uid.startswith("1.2.840.10008.1.2.")


def test_corrupted_jpeg2000_codestream_is_rejected_as_undecodable(north, copy_of):
    source = pydicom_file("693_J2KI.dcm")
    data = bytearray(source.read_bytes())
    codestream = data.index(b"\xff\x4f\xff\x51")  # J2K start of codestream + SIZ marker
    data[codestream:codestream + 8] = b"\x00" * 8
    damaged = copy_of(source, "damaged.dcm")
    damaged.write_bytes(bytes(data))
    result = only(ingest_path(batch_for(north, user=north.patient_user), damaged))
    assert result.outcome == FileOutcome.REJECTED and "cannot be decoded" in result.reason


def test_file_over_the_size_limit_is_rejected(north, settings, write_ct_series):
    settings.INGEST_MAX_FILE_BYTES = 1024
    result = only(ingest_path(batch_for(north), write_ct_series(slices=1)[0]))
    assert result.outcome == FileOutcome.REJECTED and result.failure_reason == FailureReason.OUT_OF_RESOURCES


def test_zip_archive_yields_one_result_per_entry_and_refuses_unsafe_paths(north, write_ct_series):
    paths = write_ct_series(slices=2)
    archive = zip_of({
        "CD/IMAGES/IM1": paths[0].read_bytes(),
        "CD/IMAGES/IM2": paths[1].read_bytes(),
        "../../etc/evil.dcm": paths[0].read_bytes(),
        "/absolute/evil.dcm": paths[0].read_bytes(),
        "C:\\windows\\evil.dcm": paths[0].read_bytes(),
        "CD/readme.txt": b"hello",
    })
    results = ingest_file(batch=batch_for(north), name="cd.zip", fileobj=archive)
    by_name = {result.uploaded_file.name: result for result in results}
    assert by_name["cd.zip/CD/IMAGES/IM1"].outcome == FileOutcome.STORED
    assert by_name["cd.zip/CD/IMAGES/IM2"].outcome == FileOutcome.STORED
    for evil in ("cd.zip/../../etc/evil.dcm", "cd.zip//absolute/evil.dcm", "cd.zip/C:\\windows\\evil.dcm"):
        assert by_name[evil].outcome == FileOutcome.REJECTED and "path" in by_name[evil].reason
    assert by_name["cd.zip/CD/readme.txt"].outcome == FileOutcome.REJECTED
    assert Instance.objects.count() == 2


def test_zip_bombs_are_refused_without_unpacking(north, settings):
    bomb = zip_of({"zeros.dcm": b"\0" * (4 * 1024 * 1024)})
    result = only(ingest_file(batch=batch_for(north), name="bomb.zip", fileobj=bomb))
    assert result.outcome == FileOutcome.REJECTED and "zip bomb" in result.reason

    settings.INGEST_MAX_ZIP_ENTRIES = 3
    many = zip_of({f"file{n}.dcm": b"x" for n in range(4)})
    result = only(ingest_file(batch=batch_for(north), name="many.zip", fileobj=many))
    assert "4 files" in result.reason and result.failure_reason == FailureReason.OUT_OF_RESOURCES

    settings.INGEST_MAX_ZIP_TOTAL_BYTES = 1000
    large = zip_of({"a.dcm": b"a" * 600, "b.dcm": b"b" * 600})
    result = only(ingest_file(batch=batch_for(north), name="large.zip", fileobj=large))
    assert "unpacks to" in result.reason
    assert not Instance.objects.exists()


@pytest.fixture(params=[False, True], ids=["pillow-default", "after-weasyprint"])
def pillow_truncation_setting(request, monkeypatch):
    """Ingest must reject truncated images even where WeasyPrint has made Pillow lenient."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", request.param)


def test_png_and_jpeg_images_become_one_series_without_physical_scale(north, pillow_truncation_setting):
    batch = batch_for(north, patient=north.patient)
    jpeg = io.BytesIO()
    Image.fromarray(np.full((12, 12), 90, dtype=np.uint8)).save(jpeg, format="JPEG")
    results = [
        only(ingest_file(batch=batch, name="000108 (3).png", fileobj=io.BytesIO(png_bytes(10)))),
        only(ingest_file(batch=batch, name="000109 (3).png", fileobj=io.BytesIO(png_bytes(20)))),
        only(ingest_file(batch=batch, name="slice.jpg", fileobj=io.BytesIO(jpeg.getvalue()))),
        only(ingest_file(batch=batch, name="again.png", fileobj=io.BytesIO(png_bytes(10)))),
        only(ingest_file(batch=batch, name="cut.png", fileobj=io.BytesIO(noisy_png()[:300]))),
    ]
    assert [r.outcome for r in results] == ["stored", "stored", "stored", "duplicate", "rejected"]
    series = Series.objects.get()
    assert series.has_physical_scale is False and series.study.patient == north.patient
    instances = list(series.instances.in_slice_order())
    assert [i.instance_number for i in instances] == [1, 2, 3]
    assert all(i.pixel_spacing is None and i.file_format == Instance.Format.IMAGE for i in instances)
    with instances[0].file.open("rb") as stored:
        image = Image.open(stored)
        assert image.format == "PNG" and image.mode == "L"


def test_images_need_a_chosen_patient(north):
    result = only(ingest_file(batch=batch_for(north), name="a.png", fileobj=io.BytesIO(png_bytes(10))))
    assert result.outcome == FileOutcome.REJECTED and "choose the patient" in result.reason


def test_patient_upload_lands_on_their_own_record_only(north, write_ct_series):
    batch = batch_for(north, user=north.patient_user)
    assert batch.patient == north.patient
    for path in write_ct_series(patient_id="OTHER-HOSPITAL-ID", slices=2):
        assert only(ingest_path(batch, path)).outcome == FileOutcome.STORED
    assert Study.objects.get().patient == north.patient
    assert not Patient.objects.filter(mrn="OTHER-HOSPITAL-ID").exists()


def test_patient_cannot_open_a_batch_for_another_record(north):
    from scans.ingest import UploadNotAllowed

    other = PatientFactory(hospital=north.hospital)
    with pytest.raises(UploadNotAllowed):
        batch_for(north, user=north.patient_user, patient=other)
    assert not UploadBatch.objects.exists()


def test_doctor_chosen_patient_rejects_files_of_another_patient_id(north, write_ct_series):
    chosen = PatientFactory(hospital=north.hospital, mrn="MRN-CHOSEN-1")
    batch = batch_for(north, patient=chosen)
    matching = only(ingest_path(batch, write_ct_series(patient_id="MRN-CHOSEN-1", slices=1)[0]))
    other = only(ingest_path(batch, write_ct_series(patient_id="MRN-SOMEONE-ELSE", slices=1)[0]))
    assert matching.outcome == FileOutcome.STORED
    assert other.outcome == FileOutcome.REJECTED and "MRN-SOMEONE-ELSE" in other.reason


def test_study_already_filed_under_another_patient_is_not_mixed(north, write_ct_series, tmp_path):
    import pydicom

    path = write_ct_series(patient_id="MRN-A-1", slices=1)[0]
    only(ingest_path(batch_for(north), path))
    dataset = pydicom.dcmread(path)
    dataset.PatientID = "MRN-B-2"
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    other = tmp_path / "other.dcm"
    dataset.save_as(other)
    result = only(ingest_path(batch_for(north), other))
    assert result.outcome == FileOutcome.REJECTED and "another patient" in result.reason


def test_stow_to_a_study_rejects_instances_of_another_study(north, write_ct_series):
    path = write_ct_series(slices=1, study_uid="1.2.826.0.1.3680043.8.498.1")[0]
    batch = batch_for(north, source=UploadBatch.Source.STOW)
    result = only(ingest_path(batch, path, expected_study_uid="1.2.826.0.1.3680043.8.498.2"))
    assert result.failure_reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert only(ingest_path(batch, path, expected_study_uid="1.2.826.0.1.3680043.8.498.1")).outcome == "stored"


def test_closing_a_web_batch_completes_its_series_and_queues_analysis_once(
    north, write_ct_series, queued_analyses, django_capture_on_commit_callbacks
):
    batch = batch_for(north)
    with django_capture_on_commit_callbacks(execute=True):
        for path in write_ct_series(slices=3):
            ingest_path(batch, path)
        close_batch(batch=batch)
        close_batch(batch=batch)
    series = Series.objects.get()
    assert series.status == SeriesStatus.RECEIVED and series.slices_total == 3
    assert queued_analyses == [series.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert complete_series(series=series) is False
    assert queued_analyses == [series.pk]


def test_stow_series_completes_after_the_quiet_period_only(
    north, write_ct_series, queued_analyses, quiet_checks, settings, django_capture_on_commit_callbacks
):
    settings.SERIES_QUIET_SECONDS = 30
    batch = batch_for(north, source=UploadBatch.Source.STOW)
    with django_capture_on_commit_callbacks(execute=True):
        for path in write_ct_series(slices=2):
            ingest_path(batch, path)
        close_batch(batch=batch)
    series = Series.objects.get()
    assert quiet_checks == [series.pk], "one pending check per series, however many instances arrive"
    assert series.status == SeriesStatus.RECEIVING
    with django_capture_on_commit_callbacks(execute=True):
        assert complete_series_if_quiet(series_id=series.pk) is False
        assert quiet_checks == [series.pk, series.pk], "a check that comes too early reschedules itself"
        later = timezone.now() + timedelta(seconds=31)
        assert complete_series_if_quiet(series_id=series.pk, now=later) is True
        assert complete_series_if_quiet(series_id=series.pk, now=later) is False
    assert queued_analyses == [series.pk]
    series.refresh_from_db()
    assert series.status == SeriesStatus.RECEIVED


def test_late_instances_complete_their_series_again_and_a_resend_does_not(
    north, write_ct_series, queued_analyses, django_capture_on_commit_callbacks
):
    """A second upload with the slice the first one missed queues a new analysis; re-sending it all does not."""
    paths = write_ct_series(slices=4)

    def upload(files):
        batch = batch_for(north)
        with django_capture_on_commit_callbacks(execute=True):
            ingest_files(batch=batch, files=open_files(files))
            close_batch(batch=batch)

    upload(paths[:3])
    series = Series.objects.get()
    assert queued_analyses == [series.pk]
    Series.objects.filter(pk=series.pk).update(status=SeriesStatus.ANALYSED)  # as the pipeline leaves it
    upload(paths[3:])
    series.refresh_from_db()
    assert queued_analyses == [series.pk, series.pk] and series.slices_total == 4
    upload(paths)
    assert queued_analyses == [series.pk, series.pk]


def test_a_late_stow_instance_completes_its_series_again_after_the_quiet_period(
    north, write_ct_series, queued_analyses, quiet_checks, settings, django_capture_on_commit_callbacks
):
    settings.SERIES_QUIET_SECONDS = 30
    paths = write_ct_series(slices=3)

    def stow(files, *, quiet_since):
        batch = batch_for(north, source=UploadBatch.Source.STOW)
        with django_capture_on_commit_callbacks(execute=True):
            ingest_files(batch=batch, files=open_files(files))
            close_batch(batch=batch)
        with django_capture_on_commit_callbacks(execute=True):
            return complete_series_if_quiet(series_id=quiet_checks[-1], now=quiet_since + timedelta(seconds=31))

    assert stow(paths[:2], quiet_since=timezone.now()) is True
    series = Series.objects.get()
    Series.objects.filter(pk=series.pk).update(status=SeriesStatus.REPORTED)
    assert stow(paths[2:], quiet_since=timezone.now()) is True
    assert queued_analyses == [series.pk, series.pk] and len(quiet_checks) == 2


def test_uploaded_file_rows_record_every_outcome(north, write_ct_series):
    batch = batch_for(north)
    path = write_ct_series(slices=1)[0]
    ingest_path(batch, path)
    ingest_path(batch, path)
    ingest_path(batch, pydicom_file("rtplan.dcm"))
    rows = list(UploadedFile.objects.filter(batch=batch).values_list("outcome", "failure_reason"))
    assert rows == [("stored", None), ("duplicate", None), ("rejected", 0x0122)]


def test_an_abandoned_upload_is_closed_and_its_series_complete_while_a_live_one_stays_open(
    north, write_ct_series, queued_analyses, settings, django_capture_on_commit_callbacks
):
    settings.UPLOAD_BATCH_IDLE_SECONDS = 3600
    abandoned, live = batch_for(north), batch_for(north)
    for path in write_ct_series(slices=2):
        ingest_path(abandoned, path)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    UploadBatch.objects.filter(pk=abandoned.pk).update(created_at=two_hours_ago)
    abandoned.files.update(created_at=two_hours_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert close_abandoned_batches() == 1

    abandoned.refresh_from_db()
    live.refresh_from_db()
    assert abandoned.closed_at is not None and live.closed_at is None
    series = Series.objects.get()
    assert series.status == SeriesStatus.RECEIVED
    assert queued_analyses == [series.pk]
