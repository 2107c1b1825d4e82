# Every input comes from the AWS stack's output grafana_stack_inputs; infra/stacks.py passes
# them (make deploy). grafana_auth is a token: for a managed workspace infra/stacks.py mints a
# short-lived one; for grafana_url, export TF_VAR_grafana_auth.

variable "grafana_url" {
  description = "URL of the Grafana to provision: the managed workspace, or grafana_url of the AWS stack."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.grafana_url))
    error_message = "grafana_url must start with http:// or https://."
  }
}

variable "grafana_auth" {
  description = "Service account token (or user:password) for grafana_url."
  type        = string
  sensitive   = true

  validation {
    condition     = var.grafana_auth != ""
    error_message = "grafana_auth is empty: export TF_VAR_grafana_auth=<service account token of that Grafana>."
  }
}

variable "name" {
  description = "name_prefix of the AWS stack: names the data source and the folder."
  type        = string
}

variable "region" {
  description = "AWS region of the Athena workgroup and Glue database."
  type        = string
}

variable "glue_database" {
  description = "Glue database of daily_prices and the dashboard views."
  type        = string
}

variable "athena_workgroup" {
  description = "Athena workgroup the dashboards query in."
  type        = string
}

variable "results_bucket" {
  description = "Athena query results bucket (the data source writes under grafana/)."
  type        = string
}

variable "datasource_uid" {
  description = "uid of the Athena data source; the dashboards in grafana/dashboards/ refer to it."
  type        = string
  default     = "marketlake-athena"
}

variable "athena_auth_type" {
  description = "authType of the Athena data source: ec2_iam_role on Amazon Managed Grafana (the workspace role), default elsewhere."
  type        = string
  default     = "default"

  validation {
    condition     = contains(["ec2_iam_role", "default", "keys", "credentials"], var.athena_auth_type)
    error_message = "athena_auth_type must be ec2_iam_role, default, keys or credentials."
  }
}

variable "watchlist" {
  description = "tickers of the AWS stack: the symbols the dashboards' symbol variable selects by default (never All: a whole-market lake holds ~10,000). Empty: the dashboard files' own default."
  type        = list(string)
  default     = []
}
