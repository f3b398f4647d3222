"""The classifier's classes, kept free of TensorFlow so any process can import them.

``CLASS_NAMES`` is the order of the classifier's outputs; ``ml.networks`` re-exports both names.
"""

CLASS_NAMES = ("adenocarcinoma", "large_cell_carcinoma", "squamous_cell_carcinoma", "normal")


def class_name_from_folder(folder_name: str) -> str:
    """Map a folder of the public chest CT-scan image set onto ``CLASS_NAMES``.

    The set names training folders like ``adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib`` or
    ``large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa`` and test folders ``large.cell.carcinoma``.
    """
    normalised = folder_name.strip().lower().replace(".", "_").replace("-", "_").replace(" ", "_")
    for class_name in CLASS_NAMES:
        if normalised == class_name or normalised.startswith(class_name + "_"):
            return class_name
    raise ValueError(
        f"folder {folder_name!r} does not name a known class; expected one of {CLASS_NAMES}"
    )
