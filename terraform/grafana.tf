# Dashboards, AWS side. With create_grafana = true: an Amazon Managed Grafana workspace (IAM
# Identity Center sign-in) whose role reads Athena and the lake. What lives inside Grafana (the
# Athena data source, a folder, the dashboards) is the second root module, terraform/grafana/,
# applied by `make deploy` after this one from the output grafana_stack_inputs. Between the
# two, make deploy installs the Athena data source plugin in the workspace at the pinned
# grafana_athena_plugin_version (infra/grafana_plugin.py).

locals {
  grafana_enabled = var.create_grafana || var.grafana_url != ""
  grafana_url     = var.create_grafana ? "https://${aws_grafana_workspace.this[0].endpoint}" : (var.grafana_url != "" ? var.grafana_url : null)

  grafana_athena_auth_type = var.grafana_athena_auth_type != "" ? var.grafana_athena_auth_type : (var.create_grafana ? "ec2_iam_role" : "default")

  # Pinned, not AWS's default (the newest): the Athena plugin version (grafana_athena_plugin_version)
  # must support it, and a workspace can be upgraded later but never downgraded.
  grafana_version = "10.4"

  # "Workspace configuration options" of Amazon Managed Grafana. Plugin management lets an
  # admin (make deploy's service account) install the Athena data source plugin, which
  # workspaces of version 9 and newer may not have. Alerting is stated, not left to a default:
  # Grafana alerting, the only kind from Grafana 11 on; nothing here defines alerts.
  grafana_workspace_configuration = {
    plugins         = { pluginAdminEnabled = true }
    unifiedAlerting = { enabled = true }
  }
}

# -- Amazon Managed Grafana (optional) -------------------------------------------------------

data "aws_iam_policy_document" "grafana_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["grafana.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "grafana" {
  count              = var.create_grafana ? 1 : 0
  name               = "${local.name}-grafana"
  assume_role_policy = data.aws_iam_policy_document.grafana_assume.json
}

# Athena and Glue catalog access for workgroups tagged GrafanaDataSource = true.
resource "aws_iam_role_policy_attachment" "grafana_athena" {
  count      = var.create_grafana ? 1 : 0
  role       = aws_iam_role.grafana[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonGrafanaAthenaAccess"
}

# ... plus what the managed policy cannot know: our lake, our results bucket, our key.
data "aws_iam_policy_document" "grafana_lake_read" {
  statement {
    sid     = "ReadWhatTheViewsRead"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.lake.arn}/curated/*",
      "${aws_s3_bucket.lake.arn}/audit/*",
      "${aws_s3_bucket.lake.arn}/reference/*",
    ]
  }

  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn]
  }

  statement {
    sid       = "AthenaQueryResultsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.athena_results.arn]
  }

  statement {
    sid       = "AthenaQueryResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${aws_s3_bucket.athena_results.arn}/*"]
  }

  statement {
    sid       = "ProjectKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "grafana_lake_read" {
  count  = var.create_grafana ? 1 : 0
  name   = "read-the-lake"
  role   = aws_iam_role.grafana[0].id
  policy = data.aws_iam_policy_document.grafana_lake_read.json
}

resource "aws_grafana_workspace" "this" {
  count                    = var.create_grafana ? 1 : 0
  name                     = local.name
  description              = "marketlake dashboards on Athena"
  account_access_type      = "CURRENT_ACCOUNT"
  authentication_providers = ["AWS_SSO"]
  permission_type          = "CUSTOMER_MANAGED"
  role_arn                 = aws_iam_role.grafana[0].arn
  data_sources             = ["ATHENA"]
  grafana_version          = local.grafana_version
  configuration            = jsonencode(local.grafana_workspace_configuration)

  lifecycle {
    # Sign-in is IAM Identity Center only: a workspace without an admin is one nobody can use.
    # (Terraform >= 1.5 is allowed, so no cross-variable validation: a precondition instead.)
    precondition {
      condition     = length(var.grafana_admin_user_ids) > 0 && alltrue([for id in var.grafana_admin_user_ids : trimspace(id) != ""])
      error_message = "create_grafana = true needs at least one admin: set grafana_admin_user_ids to IAM Identity Center user ids (Identity Center requires AWS Organizations: the Organization's management account or a delegated admin), or set create_grafana = false."
    }
  }
}

resource "aws_grafana_role_association" "admins" {
  count        = var.create_grafana ? 1 : 0
  role         = "ADMIN"
  user_ids     = var.grafana_admin_user_ids
  workspace_id = aws_grafana_workspace.this[0].id
}

# The Grafana stack (terraform/grafana/) signs in as this service account. Its token is not a
# resource here: a provider's settings must be known before apply, so infra/stacks.py mints a
# short-lived token after this stack exists, passes it to the Grafana stack, and revokes it.
resource "aws_grafana_workspace_service_account" "terraform" {
  count        = var.create_grafana ? 1 : 0
  name         = "terraform"
  grafana_role = "ADMIN"
  workspace_id = aws_grafana_workspace.this[0].id
}
