"""RadAssist machine learning: preprocessing, networks, phantoms, metrics, training and inference.

The modules directly in this package (other than the Django layer in ``models.py``, ``tasks.py``,
``services.py``, ``admin.py``, ``apps.py`` and ``management/``) are pure: importable and testable
without Django or a database. TensorFlow is imported lazily inside the functions that need it in
``preprocessing``, ``phantoms``, ``measurements`` and ``inference`` so that a process that forks
(a Celery parent) never initialises it.
"""
