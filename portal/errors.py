class UserFacingError(Exception):
    """An error a user caused; its message is written for that user and shown as-is (never a 500)."""

    status_code = 400
