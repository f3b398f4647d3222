"""The imaging core: pixels from DICOM and image files to display and network arrays, free of Django.

Used by the slice viewer (``clinic.viewer``), DICOMweb's rendered frames (``scans.dicomweb.rendering``)
and the networks' preprocessing (``ml.preprocessing``), so that a window, a rescale or an encoding
means the same thing everywhere.

- ``imaging.windowing``: display windows and the DICOM linear VOI function (PS3.3 C.11.2.1.2.1);
- ``imaging.pixels``: stored pixel values through the modality LUT, and 8-bit grey from image files;
- ``imaging.encoding``: resampling and PNG/JPEG encoding.
"""
