# The dashboards as the Grafana stack provisions them: each grafana/dashboards/*.json with the
# default selection of its `symbol` variable set to the watchlist (the AWS stack's tickers),
# so a whole-market lake opens on those symbols, never on All (10,000 lines, a huge IN list).
# No provider and no resource: tests/infra evaluates this module offline with real Terraform.

variable "dashboards_dir" {
  description = "Folder of the dashboard JSON files."
  type        = string
}

variable "files" {
  description = "Dashboard file names in dashboards_dir."
  type        = list(string)
}

variable "watchlist" {
  description = "Symbols the symbol variables select by default; empty (or [\"ALL\"], the whole market) keeps each file's own default."
  type        = list(string)
  default     = []
}

locals {
  decoded = { for file in var.files : file => jsondecode(file("${var.dashboards_dir}/${file}")) }
  # tickers = ["ALL"] is the whole market (MARKETLAKE_TICKERS=ALL): no watchlist to open on,
  # so the files keep their own default (a default of "ALL" would open on Allstate alone).
  whole_market = contains(["ALL", "*"], upper(trimspace(join(",", var.watchlist))))
  watchlist    = local.whole_market ? [] : var.watchlist
  current      = { selected = true, text = local.watchlist, value = local.watchlist }

  # merge() with a for-filtered object rather than a conditional: both results of a conditional
  # must have one type, and a variable given `current` is another object type than one without.
  # A dashboard without variables is provisioned as it is.
  config = {
    for file, dashboard in local.decoded : file => (
      can(dashboard.templating.list) ? jsonencode(merge(dashboard, {
        templating = merge(dashboard.templating, {
          list = [
            for variable in dashboard.templating.list : merge(variable, {
              for key, value in { current = local.current } : key => value
              if length(local.watchlist) > 0 && try(variable.name, "") == "symbol"
            })
          ]
        })
      })) : jsonencode(dashboard)
    )
  }
}

output "config_json" {
  description = "Dashboard file -> the JSON to provision."
  value       = local.config
}
