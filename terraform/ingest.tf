# The ingest Lambda: lambdas/ingest/handler.py + the marketlake package + the runtime
# dependencies the layers do not carry, zipped by `make package` (infra/package.py).
# pandas, numpy and pyarrow come from the AWS SDK for pandas layer, aws_lambda_powertools
# from the Powertools layer. boto3/botocore are zipped (requirements/lambda-sdk.txt): the
# runtime's SDK version is not documented, and state writes need S3 conditional writes.

resource "aws_lambda_function" "ingest" {
  function_name = local.function_name
  description   = "Fetches daily bars from ${local.provider_names[var.data_provider]} into s3://${local.lake_bucket_name}/raw/ and starts the Glue build when new bars landed."
  role          = aws_iam_role.ingest.arn
  # The newest runtime with both an AWS SDK for pandas and a Powertools layer that this
  # provider line (hashicorp/aws 5.x) accepts; python3.14 needs provider 6.
  runtime          = "python3.13"
  architectures    = ["x86_64"]
  handler          = "handler.handler"
  filename         = local.lambda_zip_path
  source_code_hash = filebase64sha256(local.lambda_zip_path)
  layers           = [local.sdk_pandas_layer_arn, local.powertools_layer_arn]
  memory_size      = var.lambda_memory_mb
  timeout          = var.lambda_timeout_seconds
  kms_key_arn      = aws_kms_key.main.arn

  # None by default (-1 in the provider): new accounts cannot reserve any (Lambda keeps 100
  # unreserved). State writes are conditional, so overlapping runs cannot overwrite each
  # other; make plan/deploy check the account when a reservation is set.
  reserved_concurrent_executions = var.lambda_reserved_concurrency == null ? -1 : var.lambda_reserved_concurrency

  environment {
    # The settings of every run, then the chosen provider's only: an Alpha Vantage
    # deployment keeps the environment it had before Polygon was offered.
    variables = merge(local.ingest_environment, local.provider_environment[var.data_provider])
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.ingest_dlq.arn
  }

  lifecycle {
    precondition {
      condition     = var.lambda_timeout_seconds >= local.ingest_reserve_seconds + 60
      error_message = "lambda_timeout_seconds leaves less than a minute of work: the ingest keeps ${local.ingest_reserve_seconds} s in reserve with these rate-limit and retry settings."
    }
    # Two variables' agreement, checked here: a validation block naming another variable
    # needs Terraform 1.9, and the stack allows 1.5.
    precondition {
      condition     = var.data_provider == "polygon" || join(",", var.tickers) != "ALL"
      error_message = "tickers = [\"ALL\"] is the whole market, which only data_provider = \"polygon\" answers (one request a session); with alphavantage list the symbols."
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.ingest,
    aws_iam_role_policy.ingest,
  ]
}

locals {
  provider_names = { alphavantage = "Alpha Vantage", polygon = "Polygon (Massive)" }

  ingest_environment = {
    LAKE_BUCKET                   = aws_s3_bucket.lake.id
    GLUE_WORKFLOW_NAME            = aws_glue_workflow.build.name
    MARKETLAKE_PROVIDER           = var.data_provider
    MARKETLAKE_TICKERS            = join(",", var.tickers)
    MARKETLAKE_HISTORY_DAYS       = tostring(var.history_days)
    MARKETLAKE_ACTIONS_EVERY_DAYS = tostring(var.corporate_actions_every_days)
  }
  # The key's secret id and the pacing, per provider. one(): the Polygon secret exists only
  # with data_provider = "polygon", and this map is evaluated either way.
  provider_environment = {
    alphavantage = {
      ALPHAVANTAGE_SECRET_ID        = aws_secretsmanager_secret.alphavantage.arn
      ALPHAVANTAGE_CALLS_PER_MINUTE = tostring(var.alphavantage_calls_per_minute)
      ALPHAVANTAGE_CALLS_PER_DAY    = tostring(var.alphavantage_calls_per_day)
      ALPHAVANTAGE_MAX_RETRIES      = tostring(var.alphavantage_max_retries)
      ALPHAVANTAGE_BACKOFF_SECONDS  = tostring(var.alphavantage_backoff_seconds)
      ALPHAVANTAGE_OUTPUTSIZE       = var.alphavantage_outputsize
      ALPHAVANTAGE_DATATYPE         = "json"
    }
    polygon = {
      POLYGON_SECRET_ID        = one(aws_secretsmanager_secret.polygon[*].arn)
      POLYGON_CALLS_PER_MINUTE = tostring(var.polygon_calls_per_minute)
      POLYGON_EARNINGS_PER_RUN = tostring(var.polygon_earnings_per_run)
      POLYGON_MAX_RETRIES      = tostring(var.polygon_max_retries)
      POLYGON_BACKOFF_SECONDS  = tostring(var.polygon_backoff_seconds)
    }
  }
}

# The time budget of marketlake.aws.lambda_ingest (worst_case_symbol_seconds), mirrored for
# the chosen provider: before each request the Lambda stops when less than the limiter's
# next wait + one request's worst case (every attempt timing out, with capped backoffs
# between, each at least the pace's interval) + SAFETY_SECONDS is left. The timeout must
# exceed it.
locals {
  ingest_request_timeout_seconds = 30  # providers.http TIMEOUT_SECONDS
  ingest_backoff_cap_seconds     = 120 # providers.http MAX_BACKOFF_SECONDS
  ingest_safety_seconds          = 15  # SAFETY_SECONDS
  ingest_polygon                 = var.data_provider == "polygon"
  ingest_max_retries             = local.ingest_polygon ? var.polygon_max_retries : var.alphavantage_max_retries
  ingest_backoff_seconds         = local.ingest_polygon ? var.polygon_backoff_seconds : var.alphavantage_backoff_seconds
  ingest_calls_per_minute        = local.ingest_polygon ? var.polygon_calls_per_minute : var.alphavantage_calls_per_minute
  # 0: Polygon unpaced (paid plans).
  ingest_interval_seconds = local.ingest_calls_per_minute == 0 ? 0 : 60 / local.ingest_calls_per_minute
  ingest_worst_symbol_seconds = (local.ingest_max_retries + 1) * local.ingest_request_timeout_seconds + sum(concat([0], [
    for n in range(local.ingest_max_retries) : max(min(local.ingest_backoff_seconds * pow(2, n), local.ingest_backoff_cap_seconds), local.ingest_interval_seconds)
  ]))
  ingest_reserve_seconds = ceil(local.ingest_interval_seconds) + local.ingest_worst_symbol_seconds + local.ingest_safety_seconds
}

# Asynchronous invocations (the schedule): one retry, then the event goes to the DLQ above.
resource "aws_lambda_function_event_invoke_config" "ingest" {
  function_name                = aws_lambda_function.ingest.function_name
  maximum_retry_attempts       = 1
  maximum_event_age_in_seconds = 3600
}

resource "aws_cloudwatch_log_group" "ingest" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_sqs_queue" "ingest_dlq" {
  name                      = "${local.name}-ingest-dlq"
  kms_master_key_id         = aws_kms_key.main.arn
  message_retention_seconds = 1209600 # 14 days
}

# -- IAM: only its prefixes, its provider's secret, its workflow, its logs ------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ingest" {
  name               = "${local.name}-ingest"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid = "LakeZonesTheIngestWrites"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = [
      "${aws_s3_bucket.lake.arn}/raw/*",
      "${aws_s3_bucket.lake.arn}/quarantine/*",
      "${aws_s3_bucket.lake.arn}/state/ingest_state.json",
      "${aws_s3_bucket.lake.arn}/state/recent_bars/*",
      "${aws_s3_bucket.lake.arn}/state/raw_landed/*", # each raw object's rows and digest
      "${aws_s3_bucket.lake.arn}/audit/ingest_runs/*",
      "${aws_s3_bucket.lake.arn}/audit/ingest_quarantine/*", # the bars it quarantined
    ]
  }

  # The lake's lock (marketlake.lock), held while it ingests: created If-None-Match, renewed
  # If-Match, released with a conditional delete, which S3 authorizes as DeleteObject and
  # GetObject. The only object the Lambda may delete.
  statement {
    sid       = "TheLakesLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/state/lock.json"]
  }

  # Whether the published build has read the newest raw data (state/versions/): if not, a
  # run with no new bars still starts the build.
  statement {
    sid       = "ReadTheBuildRegistry"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.lake.arn}/state/versions/*"]
  }

  # Without ListBucket a missing key answers 403 instead of 404, and the first run (no
  # state yet) would fail. ListBucket reveals key names only, never contents.
  statement {
    sid       = "MissingKeysAnswer404"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
  }

  # The chosen provider's key only (secrets.tf): the code reads no other.
  statement {
    sid       = "TheApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.api_key_secret_arn]
  }

  statement {
    sid       = "StartTheBuildWhenNewBarsLanded"
    actions   = ["glue:StartWorkflowRun"]
    resources = ["arn:${local.partition}:glue:${var.region}:${local.account_id}:workflow/${local.workflow_name}"]
  }

  statement {
    sid       = "ProjectKeyForLakeSecretAndQueue"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
  }

  statement {
    sid       = "XRayTracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }

  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ingest_dlq.arn]
  }
}

resource "aws_iam_role_policy" "ingest" {
  name   = "ingest"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}
