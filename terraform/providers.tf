provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Project = var.name_prefix, ManagedBy = "terraform" })
  }
}

# The grafana provider manages the data source, folder and dashboards. It points at the
# Amazon Managed Grafana workspace this module creates (create_grafana = true), or at any
# existing Grafana (grafana_url + grafana_auth). With neither, no grafana resource exists.
provider "grafana" {
  url  = local.grafana_url
  auth = local.grafana_auth
}
