"""The lake's zones and their formats, shared by the ingest that writes them and the build
that reads them: the raw zone's bars (raw) and corporate actions (actions), the ingest state
and landed records (state), and the audit zone's run and check tables (audit)."""
