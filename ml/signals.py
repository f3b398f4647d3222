"""What the analysis stage announces; ``clinic.pipeline`` connects it to the next stage (ml imports no later stage)."""

from django.dispatch import Signal

#: Sent once the transaction that stored a successful, current analysis has committed (``analysis_id``).
analysis_succeeded = Signal()
