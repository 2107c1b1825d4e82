output "lake_bucket" {
  description = "The lake bucket (raw/, curated/, audit/, ... zones)."
  value       = aws_s3_bucket.lake.id
}

output "athena_results_bucket" {
  description = "Where Athena writes query results (they expire)."
  value       = aws_s3_bucket.athena_results.id
}

output "glue_database" {
  description = "Glue database of the tables and views: query it in Athena."
  value       = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  description = "Athena workgroup to select in the console (or pass as --work-group)."
  value       = aws_athena_workgroup.lake.name
}

output "grafana_url" {
  description = "URL of the Amazon Managed Grafana workspace (null unless create_grafana), else the grafana_url given."
  value       = local.grafana_url
}

output "ingest_function_name" {
  description = "The ingest Lambda: invoke it by hand with aws lambda invoke."
  value       = aws_lambda_function.ingest.function_name
}

output "alphavantage_secret_arn" {
  description = "Put the Alpha Vantage key here: aws secretsmanager put-secret-value --secret-id <this> --secret-string KEY."
  value       = aws_secretsmanager_secret.alphavantage.arn
}

output "polygon_secret_arn" {
  description = "With data_provider = polygon, put the Polygon key here: aws secretsmanager put-secret-value --secret-id <this> --secret-string KEY (null otherwise)."
  value       = one(aws_secretsmanager_secret.polygon[*].arn)
}

output "glue_workflow_name" {
  description = "The build workflow (crawler, then the WAP job): aws glue start-workflow-run --name <this>."
  value       = aws_glue_workflow.build.name
}

output "glue_job_name" {
  description = "The WAP Python shell job."
  value       = aws_glue_job.wap.name
}

output "alerts_topic_arn" {
  description = "SNS topic of failures and blocked builds."
  value       = aws_sns_topic.alerts.arn
}

output "grafana_stack_inputs" {
  description = "What terraform/grafana/ needs from this stack; infra/stacks.py passes it on (enabled = false: no Grafana stack)."
  value = {
    enabled            = local.grafana_enabled
    url                = local.grafana_url
    managed            = var.create_grafana
    workspace_id       = var.create_grafana ? aws_grafana_workspace.this[0].id : null
    service_account_id = var.create_grafana ? aws_grafana_workspace_service_account.terraform[0].service_account_id : null
    name               = local.name
    region             = var.region
    datasource_uid     = var.grafana_datasource_uid
    athena_auth_type   = local.grafana_athena_auth_type
    glue_database      = aws_glue_catalog_database.lake.name
    athena_workgroup   = aws_athena_workgroup.lake.name
    results_bucket     = aws_s3_bucket.athena_results.id
    # The dashboards' default symbols: the ingest's tickers (terraform/modules/dashboards).
    watchlist = var.tickers
    # make deploy installs this version of the Athena plugin in a workspace it created (managed).
    athena_plugin_version = var.grafana_athena_plugin_version
  }
}
