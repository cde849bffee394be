"""Bulk files: streaming CSV/JSON import (add or delete) and export, run as persisted jobs.

``formats`` reads and writes the files, ``importer`` applies them in batches through the ``ContactStore``,
``job_manager`` keeps job records and runs them, ``exporter`` writes a list back out. Callers import from
``sescontacts.bulk.job_manager`` (the stable API: ImportOptions, Job, JobManager, ImportReport, Preview).
"""
