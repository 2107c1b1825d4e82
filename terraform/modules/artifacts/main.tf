# What the stack uploads from the repository, and what `make package` (infra/package.py)
# builds into dist/aws/. No provider and no resource: `make infra-check` evaluates this
# module offline with real Terraform to prove the paths and parsing below.

variable "repo_root" {
  description = "Absolute path of the repository root."
  type        = string
}

locals {
  dist_dir        = "${var.repo_root}/dist/aws"
  package_version = regex("(?m)^version\\s*=\\s*\"([^\"]+)\"", file("${var.repo_root}/pyproject.toml"))[0]
  wheel_name      = "marketlake-${local.package_version}-py3-none-any.whl"
  dashboards_dir  = "${var.repo_root}/grafana/dashboards"
}

output "package_version" {
  description = "marketlake's version, read from pyproject.toml."
  value       = local.package_version
}

output "lambda_zip_path" {
  description = "The ingest Lambda package built by make package."
  value       = "${local.dist_dir}/ingest_lambda.zip"
}

output "wheel_name" {
  description = "File name of the marketlake wheel (pip insists on name-version-tags)."
  value       = local.wheel_name
}

output "wheel_path" {
  description = "The marketlake wheel built by make package, for the Glue job's --extra-py-files."
  value       = "${local.dist_dir}/${local.wheel_name}"
}

output "glue_script_path" {
  description = "The Glue job's entry script, uploaded as it is in the repo."
  value       = "${var.repo_root}/glue/wap_job.py"
}

output "glue_python_modules" {
  description = "Pinned modules for the Glue job's --additional-python-modules (requirements/glue-job.txt)."
  value = [
    for line in split("\n", file("${var.repo_root}/requirements/glue-job.txt")) :
    trimspace(line) if trimspace(line) != "" && !startswith(trimspace(line), "#")
  ]
}

output "dashboards_dir" {
  description = "Where the Grafana dashboard JSON files live."
  value       = local.dashboards_dir
}

output "dashboard_files" {
  description = "Dashboard files to provision; empty (not an error) when the folder is empty or missing."
  value       = sort(tolist(fileset(local.dashboards_dir, "*.json")))
}
