"""The AWS adapters: the scheduled Lambda's ingest (lambda_ingest) and the Glue job's build
(glue_job). Each reads its settings the way its runtime hands them over and calls the library;
no logic of the lake lives here."""
