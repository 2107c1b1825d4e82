"""Write-audit-publish of the curated tables: the pipeline (write, audit, publish), the
version registry it publishes through, and the audit zone it records into."""
