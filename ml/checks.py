"""Django system checks for the ml app's settings that live in the environment."""

from django.core import checks


@checks.register()
def inference_precision_setting(app_configs, **kwargs):
    """A mistyped ``RADASSIST_INFERENCE_PRECISION`` is reported by ``manage.py check`` and at start-up.

    The worker itself runs float32 in that case (``ml.inference``) rather than failing analyses.
    """
    from ml.precision import InvalidPrecisionSetting, requested_precision

    try:
        requested_precision()
    except InvalidPrecisionSetting as error:
        return [checks.Error(str(error), hint="Unset it for auto, or choose float32 to turn reduced precision off.",
                             id="ml.E001")]
    return []
