# What lives inside Grafana: the Athena data source, a folder, and every dashboard in
# grafana/dashboards/*.json. A root module of its own because the grafana provider needs the
# workspace URL and a token, which only exist once the AWS stack (terraform/) is applied.

provider "grafana" {
  url  = var.grafana_url
  auth = var.grafana_auth
}

module "artifacts" {
  source    = "../modules/artifacts"
  repo_root = "${path.module}/../.."
}

resource "grafana_data_source" "athena" {
  type = "grafana-athena-datasource"
  name = "Athena (${var.name})"
  uid  = var.datasource_uid

  json_data_encoded = jsonencode({
    authType       = var.athena_auth_type
    defaultRegion  = var.region
    catalog        = "AwsDataCatalog"
    database       = var.glue_database
    workgroup      = var.athena_workgroup
    outputLocation = "s3://${var.results_bucket}/grafana/"
  })
}

resource "grafana_folder" "marketlake" {
  title = "marketlake"
  uid   = "${var.name}-dashboards"
}

# Each dashboard file with its symbol variable defaulting to the watchlist (var.watchlist).
module "dashboards" {
  source         = "../modules/dashboards"
  dashboards_dir = module.artifacts.dashboards_dir
  files          = module.artifacts.dashboard_files
  watchlist      = var.watchlist
}

resource "grafana_dashboard" "this" {
  for_each    = toset(module.artifacts.dashboard_files)
  folder      = grafana_folder.marketlake.uid
  config_json = module.dashboards.config_json[each.value]
  overwrite   = true
}
