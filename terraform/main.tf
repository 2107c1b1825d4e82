# Names, paths and values shared by the other files.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = var.name_prefix

  # Buckets are global: the account id and region keep the names unique.
  lake_bucket_name    = "${var.name_prefix}-lake-${local.account_id}-${var.region}"
  results_bucket_name = "${var.name_prefix}-athena-results-${local.account_id}-${var.region}"

  glue_database_name = replace(var.name_prefix, "-", "_")
  workgroup_name     = var.name_prefix
  workflow_name      = "${var.name_prefix}-build"
  crawler_name       = "${var.name_prefix}-raw-crawler"
  job_name           = "${var.name_prefix}-wap"
  function_name      = "${var.name_prefix}-ingest"

  # The crawler names the table after its target folder (raw/daily_prices/ -> daily_prices);
  # the prefix keeps it apart from the curated daily_prices: raw_daily_prices.
  crawler_table_prefix = "raw_"

  # Lake zones (keys relative to the bucket root; see DESIGN.md "Zones").
  raw_prefix = "raw/daily_prices/"

  # What `make package` builds and what is uploaded from the repo (modules/artifacts).
  repo_root           = "${path.module}/.."
  lambda_zip_path     = module.artifacts.lambda_zip_path
  wheel_name          = module.artifacts.wheel_name
  wheel_path          = module.artifacts.wheel_path
  glue_script_path    = module.artifacts.glue_script_path
  glue_python_modules = module.artifacts.glue_python_modules

  sdk_pandas_layer_arn = var.sdk_pandas_layer_arn != "" ? var.sdk_pandas_layer_arn : "arn:${local.partition}:lambda:${var.region}:336392948345:layer:AWSSDKPandas-Python311:${var.sdk_pandas_layer_version}"
  powertools_layer_arn = var.powertools_layer_arn != "" ? var.powertools_layer_arn : "arn:${local.partition}:lambda:${var.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:${var.powertools_layer_version}"
}

module "artifacts" {
  source    = "./modules/artifacts"
  repo_root = local.repo_root
}
