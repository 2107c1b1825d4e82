"""Ingest Lambda entry point (EventBridge Scheduler, weekdays after the US close).

The event may name the tickers ({"tickers": ["NVDA", "AMD"]}); otherwise MARKETLAKE_TICKERS.
Everything else is marketlake.aws.lambda_ingest; logs are structured JSON and never hold the key.
A failure that is no symbol's (the lake or the secret refusing the role) is logged as one ERROR
line naming the resource, then raised: the invocation fails, so its alarm, retry and DLQ apply.
"""

from aws_lambda_powertools import Logger

from marketlake.aws import lambda_ingest as aws

logger = Logger(service="marketlake-ingest")


@logger.inject_lambda_context(log_event=False)
def handler(event, context):
    return aws.run(
        event,
        context,
        log=lambda message, fields: logger.info(message, extra=fields),
        log_error=logger.error,
    )
