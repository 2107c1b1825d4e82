# One SNS topic (encrypted with the project key) receives:
#   - Glue job runs that FAILED or hit TIMEOUT, and weekly schema crawls that Failed (EventBridge rules);
#   - ingest Lambda errors and messages in either dead-letter queue (CloudWatch alarms);
#   - blocked builds: the WAP job publishes there itself (--alerts_topic_arn).

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alert_email != "" ? 1 : 0
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

data "aws_iam_policy_document" "alerts_topic" {
  # EventBridge delivers to SNS under the topic policy, and its guide's SNS example has no
  # condition ("Using resource-based policies for Amazon EventBridge", Amazon SNS
  # permissions; an earlier edition said condition blocks cannot be used there). A condition
  # EventBridge does not send would drop every Glue failure alert silently. A rule of another
  # account reaches a topic here only with an execution role this policy would have to name,
  # so the service grant alone opens nothing to others.
  statement {
    sid       = "RulesOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }

  # CloudWatch alarms send aws:SourceAccount, so the confused-deputy guard stays for them
  # (Amazon SNS Developer Guide, "Example cases for Amazon SNS access control").
  statement {
    sid       = "AlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

# -- Glue failures ----------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "glue_job_failed" {
  name        = "${local.name}-glue-job-failed"
  description = "The WAP job failed or timed out."
  event_pattern = jsonencode({
    source        = ["aws.glue"]
    "detail-type" = ["Glue Job State Change"]
    detail = {
      jobName = [local.job_name]
      state   = ["FAILED", "TIMEOUT"]
    }
  })
}

resource "aws_cloudwatch_event_rule" "glue_crawler_failed" {
  name        = "${local.name}-glue-crawler-failed"
  description = "The weekly raw schema check (the crawler) failed, on schedule or started by hand."
  event_pattern = jsonencode({
    source        = ["aws.glue"]
    "detail-type" = ["Glue Crawler State Change"]
    detail = {
      crawlerName = [local.crawler_name]
      state       = ["Failed"]
    }
  })
}

resource "aws_cloudwatch_event_target" "glue_job_failed" {
  rule = aws_cloudwatch_event_rule.glue_job_failed.name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      job   = "$.detail.jobName"
      state = "$.detail.state"
      run   = "$.detail.jobRunId"
      why   = "$.detail.message"
    }
    input_template = "\"marketlake: Glue job <job> run <run> ended <state>: <why>\""
  }
}

resource "aws_cloudwatch_event_target" "glue_crawler_failed" {
  rule = aws_cloudwatch_event_rule.glue_crawler_failed.name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      crawler = "$.detail.crawlerName"
      why     = "$.detail.errorMessage"
    }
    input_template = "\"marketlake: Glue crawler <crawler> failed: <why>\""
  }
}

# -- Lambda errors and dead letters ---------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "ingest_errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "The ingest Lambda raised an error (see its log group)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.ingest.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = {
    ingest    = aws_sqs_queue.ingest_dlq.name
    scheduler = aws_sqs_queue.scheduler_dlq.name
  }

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "An ingest event was given up and parked in ${each.value}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
