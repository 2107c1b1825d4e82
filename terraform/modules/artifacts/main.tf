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

  # The Glue job's wheels: one per pin of requirements/glue-job.lock.txt, in its order
  # (dependencies first), found in dist/aws/glue-wheels/ by the name and version a wheel's
  # file name starts with (PEP 427 spells any run of -_. as _); infra/glue_wheels.py matches
  # the same way.
  glue_wheels_dir = "${local.dist_dir}/glue-wheels"
  glue_lock_pins = [
    for line in split("\n", file("${var.repo_root}/requirements/glue-job.lock.txt")) :
    regex("^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\\s;]+)", trimspace(line))
    if can(regex("^[A-Za-z0-9]", trimspace(line)))
  ]
  glue_wheel_candidates = sort(tolist(fileset(local.glue_wheels_dir, "*.whl")))
  glue_wheel_hits = [
    for pin in local.glue_lock_pins : [
      for file in local.glue_wheel_candidates : file
      if startswith(lower(file), "${lower(replace(pin[0], "/[-_.]+/", "_"))}-${lower(pin[1])}-")
    ]
  ]
  glue_wheel_files = flatten([for hits in local.glue_wheel_hits : hits if length(hits) == 1])
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

output "glue_wheels_dir" {
  description = "Where make package downloads the Glue job's wheels."
  value       = local.glue_wheels_dir
}

output "glue_wheel_files" {
  description = "File names of the Glue job's wheels in install order, one per pin of requirements/glue-job.lock.txt."
  value       = local.glue_wheel_files
}

output "glue_wheels_missing" {
  description = "Pins of the lock with no wheel (or several) in glue_wheels_dir: the stack refuses to plan until make package has run."
  value = [
    for i, pin in local.glue_lock_pins : "${pin[0]}==${pin[1]}" if length(local.glue_wheel_hits[i]) != 1
  ]
}

output "glue_wheel_strays" {
  description = "Wheels in glue_wheels_dir that no pin of the lock names (a stale make package)."
  value       = [for file in local.glue_wheel_candidates : file if !contains(local.glue_wheel_files, file)]
}

output "dashboards_dir" {
  description = "Where the Grafana dashboard JSON files live."
  value       = local.dashboards_dir
}

output "dashboard_files" {
  description = "Dashboard files to provision; empty (not an error) when the folder is empty or missing."
  value       = sort(tolist(fileset(local.dashboards_dir, "*.json")))
}
