# Names, paths and values shared by the other files.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = var.name_prefix

  # Buckets are global: the account id and region keep the names unique. S3 allows at most 63
  # characters; terraform_data.bucket_names (storage.tf) checks the lengths at plan.
  bucket_name_formats = {
    lake           = "${var.name_prefix}-lake-%s-${var.region}"
    athena_results = "${var.name_prefix}-athena-results-%s-${var.region}"
  }
  lake_bucket_name    = format(local.bucket_name_formats.lake, local.account_id)
  results_bucket_name = format(local.bucket_name_formats.athena_results, local.account_id)

  glue_database_name = replace(var.name_prefix, "-", "_")
  workgroup_name     = var.name_prefix
  workflow_name      = "${var.name_prefix}-build"
  crawler_name       = "${var.name_prefix}-raw-crawler"
  job_name           = "${var.name_prefix}-wap"
  function_name      = "${var.name_prefix}-ingest"

  # Lake zones (keys relative to the bucket root; see DESIGN.md "Zones").
  raw_prefix = "raw/daily_prices/"

  # What `make package` builds and what is uploaded from the repo (modules/artifacts).
  repo_root        = "${path.module}/.."
  lambda_zip_path  = module.artifacts.lambda_zip_path
  wheel_name       = module.artifacts.wheel_name
  wheel_path       = module.artifacts.wheel_path
  glue_script_path = module.artifacts.glue_script_path

  # Public layers for the function's runtime (python3.13, x86_64). Names and accounts: the
  # AWS SDK for pandas "Layers" page and the Powertools for AWS Lambda (Python) "Installation"
  # page; docs/deploying.md "Before your first deploy" says where to look up other regions.
  sdk_pandas_layer_arn = var.sdk_pandas_layer_arn != "" ? var.sdk_pandas_layer_arn : "arn:${local.partition}:lambda:${var.region}:336392948345:layer:AWSSDKPandas-Python313:${var.sdk_pandas_layer_version}"
  powertools_layer_arn = var.powertools_layer_arn != "" ? var.powertools_layer_arn : "arn:${local.partition}:lambda:${var.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:${var.powertools_layer_version}"
}

module "artifacts" {
  source    = "./modules/artifacts"
  repo_root = local.repo_root
}
