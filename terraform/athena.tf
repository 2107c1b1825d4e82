# The workgroup every query goes through: its settings override the client's, results are
# SSE-KMS encrypted in the results bucket, and a query that would scan more than the
# cutoff is cancelled. The tag lets Amazon Managed Grafana's Athena policy use it.

resource "aws_athena_workgroup" "lake" {
  name          = local.workgroup_name
  description   = "marketlake: queries by people and the dashboards."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.id}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.main.arn
      }
    }
  }

  tags = {
    GrafanaDataSource = "true"
  }
}

# The Glue WAP job's own workgroup. Athena fails a CTAS that names external_location in a
# workgroup that enforces its configuration, and the build writes each version to its place
# in the lake; so this one lets the client choose, with the same encrypted results, engine
# and a cutoff sized for a full rebuild. Only the job's role may use it.
resource "aws_athena_workgroup" "build" {
  name          = "${local.workgroup_name}-build"
  description   = "marketlake: the WAP build's CTAS statements (Glue job only)."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = false
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_build_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.id}/build/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.main.arn
      }
    }
  }
}
