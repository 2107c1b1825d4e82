# One project key (CMK) encrypts the buckets, the secret, the queues, the topic, the Lambda's
# environment and logs, the schedule, and the Glue logs. Roles get kms:Decrypt /
# kms:GenerateDataKey on it in their own policies; the key policy lets IAM decide
# (root statement) and lets the services that write for us use it.

resource "aws_kms_key" "main" {
  description             = "${local.name}: lake, secret, queues, topic and logs"
  enable_key_rotation     = true
  rotation_period_in_days = var.kms_rotation_period_days
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersThroughIAM"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsOurLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
      # EventBridge rules and CloudWatch alarms publish to the encrypted alerts topic. The
      # statement is the one the Amazon SNS Developer Guide gives, with no condition ("Enable
      # compatibility between event sources from AWS services and encrypted topics",
      # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
      # a condition key the service does not send on this KMS call (aws:SourceAccount for
      # EventBridge is in doubt) would deny it and drop every alert silently. Who may publish
      # is scoped by the topic's own policy (alerts.tf); these grants are of no use without it.
      {
        Sid       = "AlarmsAndRulesPublishToTheEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = ["events.amazonaws.com", "cloudwatch.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}
