# The lake bucket (zones raw/, quarantine/, state/, curated/, audit/, reference/, tmp/athena/,
# plus artifacts/ for the Glue code) and a separate bucket for Athena query results.
# Both: public access blocked, SSE-KMS with the project key, versioning, TLS only.

# S3 bucket names are 3-63 characters ("General purpose bucket naming rules",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html). An account id
# is always 12 digits ("requires exactly 12 digits": Organizations API, DescribeAccount), so
# the lengths follow from name_prefix and region alone: checked here, at plan, before any AWS
# call (no provider, no account needed).
locals {
  bucket_name_limit = 63
  bucket_name_lengths = {
    for bucket, name_format in local.bucket_name_formats : bucket => length(format(name_format, "000000000000"))
  }
  longest_bucket_name = max(values(local.bucket_name_lengths)...)
}

resource "terraform_data" "bucket_names" {
  input = local.bucket_name_lengths

  lifecycle {
    precondition {
      condition     = local.longest_bucket_name <= local.bucket_name_limit
      error_message = "name_prefix \"${var.name_prefix}\" with region ${var.region} makes a ${local.longest_bucket_name}-character bucket name; S3 allows ${local.bucket_name_limit}: shorten name_prefix by ${local.longest_bucket_name - local.bucket_name_limit}."
    }
  }
}

resource "aws_s3_bucket" "lake" {
  bucket        = local.lake_bucket_name
  force_destroy = var.force_destroy_buckets
  depends_on    = [terraform_data.bucket_names]
}

resource "aws_s3_bucket" "athena_results" {
  bucket        = local.results_bucket_name
  force_destroy = var.force_destroy_buckets
  depends_on    = [terraform_data.bucket_names]
}

locals {
  buckets = {
    lake           = aws_s3_bucket.lake
    athena_results = aws_s3_bucket.athena_results
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets
  bucket   = each.value.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets
  bucket   = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Object events go to EventBridge (free for AWS service events): nothing listens today, but
# a rule can react to new raw objects without touching the buckets.
resource "aws_s3_bucket_notification" "this" {
  for_each    = local.buckets
  bucket      = each.value.id
  eventbridge = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets
  bucket   = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets
  bucket   = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = local.buckets
  bucket   = each.value.id
  policy   = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Lifecycle. The build deletes curated versions older than keep_versions itself; versioning
# turns those deletes into noncurrent versions, which expire here. Athena scratch tables
# (tmp/athena/) that a crashed run left behind expire after two days.
resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "expire-athena-scratch"
    status = "Enabled"

    filter {
      prefix = "tmp/athena/"
    }

    expiration {
      days = 2
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id

  rule {
    id     = "expire-query-results"
    status = "Enabled"

    filter {}

    expiration {
      days = var.athena_results_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
