# The deployment descriptor: what `marketlake --home s3://<lake bucket>` needs from the bucket
# alone (the user types only the bucket). marketlake.lakes reads it; its keys are
# marketlake.lakes.DESCRIPTOR_KEYS (tests/infra/test_infra_deployment.py holds them equal).
# Written by whoever applies, never by the job or the Lambda: their policies name their own
# state/ keys only.

locals {
  deployment_descriptor = {
    format           = 1 # marketlake.lakes.DESCRIPTOR_FORMAT
    region           = var.region
    glue_database    = aws_glue_catalog_database.lake.name
    athena_workgroup = aws_athena_workgroup.lake.name
    glue_job         = aws_glue_job.wap.name
    glue_workflow    = aws_glue_workflow.build.name
    raw_crawler      = aws_glue_crawler.raw.name
  }
}

resource "aws_s3_object" "deployment" {
  bucket       = aws_s3_bucket.lake.id
  key          = "state/deployment.json"
  content      = jsonencode(local.deployment_descriptor)
  content_type = "application/json"
  kms_key_id   = aws_kms_key.main.arn
}
