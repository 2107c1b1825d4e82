"""Glue Python shell entry point. The library (shipped as a wheel via --extra-py-files) does
the work; see marketlake.aws.glue_job for the job arguments."""

import sys

from marketlake.aws.glue_job import main

if __name__ == "__main__":
    sys.exit(main())
