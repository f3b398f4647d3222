"""What the listener negotiates: image storage of CT and MR, verification, and Study Root C-FIND.

The transfer syntaxes are those ingest can check and show (``scans.ingest.parsing``). Deflated
explicit VR little endian is accepted on the network too: the listener inflates it before ingest,
which stores explicit VR little endian (the same data set, losslessly).
"""

from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.sop_class import (
    CTImageStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

STORAGE_SOP_CLASSES = (CTImageStorage, EnhancedCTImageStorage, MRImageStorage, EnhancedMRImageStorage)
UNCOMPRESSED_TRANSFER_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
STORAGE_TRANSFER_SYNTAXES = (
    *UNCOMPRESSED_TRANSFER_SYNTAXES,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
VERIFICATION_SOP_CLASS = Verification
FIND_SOP_CLASS = StudyRootQueryRetrieveInformationModelFind


def add_supported_contexts(application_entity):
    for sop_class in STORAGE_SOP_CLASSES:
        application_entity.add_supported_context(sop_class, list(STORAGE_TRANSFER_SYNTAXES))
    application_entity.add_supported_context(VERIFICATION_SOP_CLASS, list(UNCOMPRESSED_TRANSFER_SYNTAXES))
    application_entity.add_supported_context(FIND_SOP_CLASS, list(UNCOMPRESSED_TRANSFER_SYNTAXES))
