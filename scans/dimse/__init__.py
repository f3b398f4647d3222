"""The DICOM DIMSE door: a listener that scanners and PACS talk to over the DICOM network protocol.

- ``contexts``: the SOP classes and transfer syntaxes the listener accepts;
- ``admission``: which hospital a called AE title selects and which calling AE titles may associate;
- ``store``: C-STORE through the same ingest service as the web, REST and STOW-RS doors;
- ``find``: Study Root C-FIND at study and series level, matched by the QIDO-RS matching code;
- ``listener``: the pynetdicom application entity that binds them (``manage.py run_dicom_listener``).
"""
