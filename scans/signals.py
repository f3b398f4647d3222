"""What ingest announces; ``clinic.pipeline`` connects it to the next stage (scans imports no later stage)."""

from django.dispatch import Signal

#: Sent once the transaction that completed a series has committed (``series_id``): every instance
#: it has is stored, and its analysis may start. Sent again when late instances complete it again.
series_completed = Signal()
