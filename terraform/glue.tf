# Glue: the catalog database, the raw table, the WAP build as a Python shell job, the
# workflow the ingest Lambda starts (ON_DEMAND trigger -> WAP job; the job adds the day's
# raw partitions itself), and the crawler that checks the raw table's schema weekly.

resource "aws_glue_catalog_database" "lake" {
  name        = local.glue_database_name
  description = "marketlake: raw_daily_prices (Terraform), daily_prices (WAP build), audit tables and dashboard views."
}

resource "aws_glue_security_configuration" "main" {
  name = "${local.name}-kms"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = aws_kms_key.main.arn
    }

    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = aws_kms_key.main.arn
    }

    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = aws_kms_key.main.arn
    }
  }
}

# -- raw zone: the table, its CSV classifier, the weekly schema check ----------------------

locals {
  # marketlake.lake.raw.RAW_COLUMNS (a contract test keeps them equal); every one is text,
  # as OpenCSVSerDe reads them and the staging SQL casts them.
  raw_columns    = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "source", "ingested_at"]
  raw_table_name = "raw_daily_prices" # marketlake.wap.pipeline.RAW_TABLE
}

# The table the build reads, defined here rather than by a crawl, so the daily path needs no
# crawler: the WAP job adds each new ingest_date= partition itself (AthenaEngine.register_raw).
# It is what the crawler with the classifier below made: CSV with a header, RFC 4180 quoting.
resource "aws_glue_catalog_table" "raw_daily_prices" {
  name          = local.raw_table_name
  database_name = aws_glue_catalog_database.lake.name
  description   = "The raw CSV as text (s3://${local.lake_bucket_name}/${local.raw_prefix}), one partition per ingest_date."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    classification           = "csv"
    "skip.header.line.count" = "1"
  }

  partition_keys {
    name = "ingest_date"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.lake.id}/${local.raw_prefix}"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
      parameters = {
        separatorChar            = ","
        quoteChar                = "\""
        "skip.header.line.count" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.raw_columns
      content {
        name = columns.value
        type = "string"
      }
    }
  }
}

# The built-in CSV classifier mishandles quoted commas; this one is told the header, the
# quote and the SerDe (OpenCSVSerDe reads every column as text, as the staging SQL expects).
resource "aws_glue_classifier" "raw_csv" {
  name = "${local.name}-raw-csv"

  csv_classifier {
    contains_header        = "PRESENT"
    delimiter              = ","
    quote_symbol           = "\""
    serde                  = "OpenCSVSerDe"
    header                 = local.raw_columns
    allow_single_column    = false
    disable_value_trimming = false
  }
}

# The weekly schema check, off the daily path (a run bills a 10-minute minimum). It crawls
# the raw table's own location: a raw column set that differs from the table is logged to
# CloudWatch, never applied, and a failed crawl alerts (alerts.tf). Start it by hand after
# changing the raw columns: aws glue start-crawler --name <crawler_name>.
resource "aws_glue_crawler" "raw" {
  name                   = local.crawler_name
  description            = "Weekly schema check of ${local.raw_table_name}: logs a changed raw column set, never applies it."
  role                   = aws_iam_role.crawler.arn
  database_name          = aws_glue_catalog_database.lake.name
  classifiers            = [aws_glue_classifier.raw_csv.name]
  security_configuration = aws_glue_security_configuration.main.name
  schedule               = "cron(0 6 ? * SUN *)"

  catalog_target {
    database_name = aws_glue_catalog_database.lake.name
    tables        = [aws_glue_catalog_table.raw_daily_prices.name]
  }

  # AWS accepts only CRAWL_EVERYTHING for a catalog target (new-folders-only is for S3 targets).
  recrawl_policy {
    recrawl_behavior = "CRAWL_EVERYTHING"
  }

  # A catalog target requires delete_behavior LOG; update_behavior LOG logs a schema change.
  schema_change_policy {
    update_behavior = "LOG"
    delete_behavior = "LOG"
  }

  # CombineCompatibleSchemas is what AWS enforces for a catalog target (written out, so a
  # plan shows no drift); partitions inherit the table's schema and SerDe.
  configuration = jsonencode({
    Version  = 1.0
    Grouping = { TableGroupingPolicy = "CombineCompatibleSchemas" }
    CrawlerOutput = {
      Partitions = { AddOrUpdateBehavior = "InheritFromTable" }
    }
  })
}

# -- the WAP build: Python shell job ---------------------------------------------------------

# Code is uploaded under a content hash, so a changed file is a new key and the job
# definition changes with it.
resource "aws_s3_object" "glue_script" {
  bucket      = aws_s3_bucket.lake.id
  key         = "artifacts/glue/${substr(filesha256(local.glue_script_path), 0, 16)}/wap_job.py"
  source      = local.glue_script_path
  source_hash = filemd5(local.glue_script_path)
  kms_key_id  = aws_kms_key.main.arn
}

# The wheel keeps its own file name (pip refuses a wheel whose name is not name-version-tags).
resource "aws_s3_object" "marketlake_wheel" {
  bucket      = aws_s3_bucket.lake.id
  key         = "artifacts/glue/${substr(filesha256(local.wheel_path), 0, 16)}/${local.wheel_name}"
  source      = local.wheel_path
  source_hash = filemd5(local.wheel_path)
  kms_key_id  = aws_kms_key.main.arn
}

# Every other wheel the job needs, as requirements/glue-job.lock.txt pins them (make package
# downloads them once): the job installs them from here, so no run depends on PyPI.
resource "aws_s3_object" "glue_wheel" {
  for_each = toset(module.artifacts.glue_wheel_files)

  bucket      = aws_s3_bucket.lake.id
  key         = "artifacts/glue/${substr(filesha256("${module.artifacts.glue_wheels_dir}/${each.key}"), 0, 16)}/${each.key}"
  source      = "${module.artifacts.glue_wheels_dir}/${each.key}"
  source_hash = filemd5("${module.artifacts.glue_wheels_dir}/${each.key}")
  kms_key_id  = aws_kms_key.main.arn
}

resource "aws_glue_job" "wap" {
  name                   = local.job_name
  description            = "Write-audit-publish of daily_prices on Athena (marketlake.aws.glue_job)."
  role_arn               = aws_iam_role.glue_job.arn
  glue_version           = "3.0"
  max_capacity           = var.glue_max_capacity
  max_retries            = 0
  timeout                = var.glue_job_timeout_minutes
  security_configuration = aws_glue_security_configuration.main.name

  command {
    name            = "pythonshell"
    python_version  = "3.9"
    script_location = "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_script.key}"
  }

  execution_property {
    max_concurrent_runs = 1
  }

  lifecycle {
    # A job short of a wheel would fail at start, or fetch the module from PyPI.
    precondition {
      condition     = length(module.artifacts.glue_wheels_missing) == 0 && length(module.artifacts.glue_wheel_strays) == 0
      error_message = "dist/aws/glue-wheels/ is not requirements/glue-job.lock.txt (no wheel for ${jsonencode(module.artifacts.glue_wheels_missing)}, not in the lock ${jsonencode(module.artifacts.glue_wheel_strays)}): run make package."
    }
  }

  default_arguments = {
    # What marketlake.aws.glue_job parses (REQUIRED and OPTIONAL there).
    "--lake_bucket"      = aws_s3_bucket.lake.id
    "--glue_database"    = aws_glue_catalog_database.lake.name
    "--athena_workgroup" = aws_athena_workgroup.build.name
    "--alerts_topic_arn" = aws_sns_topic.alerts.arn
    "--full_build"       = "false"
    "--max_bad_row_pct"  = tostring(var.max_bad_row_pct)
    "--keep_versions"    = tostring(var.keep_versions)

    # What Glue itself reads. A Python shell job takes wheels from S3 only in --extra-py-files;
    # its --additional-python-modules installs from PyPI and "cannot provide custom Python
    # modules hosted on Amazon S3" ("Configuring job properties for Python shell jobs in AWS
    # Glue", https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html). Dependencies
    # come first (the lock's order), marketlake last, so each finds its requirements there.
    # No "analytics" library set: its pandas 1.4 and numpy 1.22 conflict with the pins, and
    # the same page says to leave the common libraries out when yours conflict.
    "--job-language" = "python"
    "library-set"    = "none"
    "--extra-py-files" = join(",", concat(
      [for name in module.artifacts.glue_wheel_files : "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_wheel[name].key}"],
      ["s3://${aws_s3_bucket.lake.id}/${aws_s3_object.marketlake_wheel.key}"],
    ))
  }
}

# -- the workflow the Lambda starts ----------------------------------------------------------

resource "aws_glue_workflow" "build" {
  name                = local.workflow_name
  description         = "Started by ${local.function_name} when new bars landed: write-audit-publish (the job adds the new raw partitions)."
  max_concurrent_runs = 1
}

resource "aws_glue_trigger" "start_build" {
  name          = "${local.name}-start-build"
  description   = "The only step of ${local.workflow_name}: the WAP job."
  type          = "ON_DEMAND"
  workflow_name = aws_glue_workflow.build.name

  actions {
    job_name = aws_glue_job.wap.name
  }
}

# -- IAM: the crawler -----------------------------------------------------------------------

data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

locals {
  glue_catalog_arns = [
    "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog",
    "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${local.glue_database_name}",
    "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${local.glue_database_name}/*",
  ]
  glue_log_arns = [
    "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws-glue/*",
  ]
}

resource "aws_iam_role" "crawler" {
  name               = "${local.name}-crawler"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

# What AWS's crawler prerequisites ask for an S3-backed table (the AWSGlueServiceRole
# managed policy's S3, catalog and log actions, scoped down, and s3:GetObject on the data),
# plus kms:Decrypt for the SSE-KMS raw objects.
data "aws_iam_policy_document" "crawler" {
  statement {
    sid       = "ReadTheRawZone"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${local.raw_prefix}*"]
  }

  # GetBucketLocation has no s3:prefix, so it cannot share the listing's condition.
  statement {
    sid       = "FindTheLakeBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn]
  }

  # The crawler lists the table's location and its partitions' (raw/daily_prices/ and
  # raw/daily_prices/ingest_date=...); the location without its slash too, since no AWS
  # page says which form it lists with. Nothing else in the bucket.
  statement {
    sid       = "ListTheRawZone"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [trimsuffix(local.raw_prefix, "/"), local.raw_prefix, "${local.raw_prefix}*"]
    }
  }

  # A catalog target creates no table (Terraform does): it reads the table and adds or
  # updates partitions.
  statement {
    sid = "KeepTheRawTable"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:UpdateTable",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:BatchUpdatePartition",
    ]
    resources = local.glue_catalog_arns
  }

  statement {
    sid       = "CrawlerLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources = local.glue_log_arns
  }

  statement {
    sid       = "ProjectKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "crawler" {
  name   = "crawl-raw"
  role   = aws_iam_role.crawler.id
  policy = data.aws_iam_policy_document.crawler.json
}

# -- IAM: the WAP job (Athena runs its queries with these credentials too) -------------------

resource "aws_iam_role" "glue_job" {
  name               = "${local.name}-wap-job"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

data "aws_iam_policy_document" "glue_job" {
  statement {
    sid     = "ReadRawAndTheJobCode"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.lake.arn}/raw/*",
      "${aws_s3_bucket.lake.arn}/state/raw_landed/*", # what ingest recorded: the build reconciles raw against it
      "${aws_s3_bucket.lake.arn}/artifacts/glue/*",
    ]
  }

  # Versions (curated/), run logs and checks (audit/), the NYSE sessions table (reference/),
  # Athena scratch (tmp/athena/), the version registry and the rebuild flag (state/).
  statement {
    sid = "WriteAuditPublishZones"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [
      "${aws_s3_bucket.lake.arn}/curated/*",
      "${aws_s3_bucket.lake.arn}/audit/*",
      "${aws_s3_bucket.lake.arn}/reference/*",
      "${aws_s3_bucket.lake.arn}/tmp/athena/*",
      "${aws_s3_bucket.lake.arn}/state/versions/*",
      "${aws_s3_bucket.lake.arn}/state/ingest_state.json",
    ]
  }

  # The lake's lock (marketlake.lock), held for the whole build: created If-None-Match,
  # renewed If-Match, released with a conditional delete (DeleteObject and GetObject).
  statement {
    sid       = "TheLakesLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/state/lock.json"]
  }

  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.lake.arn]
  }

  statement {
    sid       = "AthenaQueryResultsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.athena_results.arn]
  }

  statement {
    sid       = "AthenaQueryResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${aws_s3_bucket.athena_results.arn}/*"]
  }

  statement {
    sid = "QueriesInTheWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:StopQueryExecution",
      "athena:GetWorkGroup",
    ]
    resources = [aws_athena_workgroup.build.arn]
  }

  statement {
    sid = "TablesPartitionsAndViews"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:DeleteTable",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:BatchUpdatePartition",
      "glue:DeletePartition",
      "glue:BatchDeletePartition",
    ]
    resources = local.glue_catalog_arns
  }

  statement {
    sid       = "AlertWhenAnAuditBlocks"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources = local.glue_log_arns
  }

  statement {
    sid       = "ProjectKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "glue_job" {
  name   = "write-audit-publish"
  role   = aws_iam_role.glue_job.id
  policy = data.aws_iam_policy_document.glue_job.json
}
