# Inputs of the marketlake stack. terraform.tfvars.example shows a working set.

# -- where and what ------------------------------------------------------------------------

variable "region" {
  description = "AWS region for every resource (the Lambda layers below must exist in it)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1 or eu-west-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; bucket names add the account id and region."
  type        = string
  default     = "marketlake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-21 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Project and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "data_provider" {
  description = "Where the scheduled ingest gets its bars (MARKETLAKE_PROVIDER): alphavantage (one request per symbol) or polygon (Polygon, now Massive: one grouped-daily request a session for the whole US market). polygon creates its key's secret (output polygon_secret_arn)."
  type        = string
  default     = "alphavantage"

  validation {
    condition     = contains(["alphavantage", "polygon"], var.data_provider)
    error_message = "data_provider must be alphavantage or polygon."
  }
}

variable "tickers" {
  description = "Symbols the scheduled ingest fetches (MARKETLAKE_TICKERS), as the provider spells them; [\"ALL\"] is every ticker of the US market (data_provider = \"polygon\" only)."
  type        = list(string)
  default     = ["NVDA", "AMD", "INTC", "TSM", "AVGO", "QCOM", "TXN", "MU", "ASML", "AMAT"]

  validation {
    condition     = length(var.tickers) > 0 && alltrue([for t in var.tickers : can(regex("^[A-Z0-9][A-Z0-9.-]{0,14}$", t))])
    error_message = "tickers: at least one; each upper-case letters, digits, '.' or '-', at most 15 characters."
  }

  validation {
    condition     = length(join(",", var.tickers)) <= 3000
    error_message = "tickers: at most 3000 characters joined (Lambda environment variables share a 4 KB limit); pass longer lists in the event instead."
  }
}

variable "history_days" {
  description = "Calendar days of history fetched for a symbol seen for the first time (MARKETLAKE_HISTORY_DAYS)."
  type        = number
  default     = 730

  validation {
    condition     = var.history_days >= 1 && floor(var.history_days) == var.history_days
    error_message = "history_days must be a whole number of at least 1."
  }
}

variable "corporate_actions_every_days" {
  description = "Days between asks for a symbol's SPLITS and DIVIDENDS (2 requests; new symbols at once), 0 for never (MARKETLAKE_ACTIONS_EVERY_DAYS)."
  type        = number
  default     = 7

  validation {
    condition     = var.corporate_actions_every_days >= 0 && floor(var.corporate_actions_every_days) == var.corporate_actions_every_days
    error_message = "corporate_actions_every_days must be a whole number of at least 0."
  }
}

# -- schedule ------------------------------------------------------------------------------

variable "schedule_expression" {
  description = "EventBridge Scheduler expression for the ingest, in UTC: weekdays 22:00, after the US close."
  type        = string
  default     = "cron(0 22 ? * MON-FRI *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be cron(...) or rate(...)."
  }
}

variable "schedule_enabled" {
  description = "Whether the weekday schedule is ENABLED (false deploys it DISABLED)."
  type        = bool
  default     = true
}

# -- Alpha Vantage rate limits (defaults: the free tier) -------------------------------------

variable "alphavantage_calls_per_minute" {
  description = "Requests per minute the ingest paces itself to (ALPHAVANTAGE_CALLS_PER_MINUTE); premium plans allow 75 and more."
  type        = number
  default     = 5

  validation {
    condition     = var.alphavantage_calls_per_minute >= 1 && var.alphavantage_calls_per_minute <= 1200 && floor(var.alphavantage_calls_per_minute) == var.alphavantage_calls_per_minute
    error_message = "alphavantage_calls_per_minute must be a whole number from 1 to 1200."
  }
}

variable "alphavantage_calls_per_day" {
  description = "Requests per US/Eastern day, persisted across runs (ALPHAVANTAGE_CALLS_PER_DAY); 25 on the free tier, 0 for no cap (premium)."
  type        = number
  default     = 25

  validation {
    condition     = var.alphavantage_calls_per_day >= 0 && floor(var.alphavantage_calls_per_day) == var.alphavantage_calls_per_day
    error_message = "alphavantage_calls_per_day must be a whole number, 0 meaning no daily cap."
  }
}

variable "alphavantage_outputsize" {
  description = "compact (last 100 sessions, free) or full (whole history, premium) for symbols seen the first time (ALPHAVANTAGE_OUTPUTSIZE)."
  type        = string
  default     = "compact"

  validation {
    condition     = contains(["compact", "full"], var.alphavantage_outputsize)
    error_message = "alphavantage_outputsize must be compact or full."
  }
}

variable "alphavantage_max_retries" {
  description = "Retries of a throttled or garbled answer before a symbol is given up for the run (ALPHAVANTAGE_MAX_RETRIES)."
  type        = number
  default     = 3

  validation {
    condition     = var.alphavantage_max_retries >= 0 && var.alphavantage_max_retries <= 10 && floor(var.alphavantage_max_retries) == var.alphavantage_max_retries
    error_message = "alphavantage_max_retries must be a whole number from 0 to 10."
  }
}

variable "alphavantage_backoff_seconds" {
  description = "First wait before a retry, doubled each time (ALPHAVANTAGE_BACKOFF_SECONDS)."
  type        = number
  default     = 15

  validation {
    condition     = var.alphavantage_backoff_seconds >= 0 && var.alphavantage_backoff_seconds <= 120
    error_message = "alphavantage_backoff_seconds must be between 0 and 120."
  }
}

# -- Polygon rate limits (data_provider = "polygon"; defaults: the free plan) ----------------
# The Lambda's pacing comes from these; the bounds are marketlake.config's.

variable "polygon_calls_per_minute" {
  description = "Requests per minute the ingest paces itself to (POLYGON_CALLS_PER_MINUTE): 5 on the free plan; 0 for no pacing (paid plans are unlimited)."
  type        = number
  default     = 5

  validation {
    condition     = var.polygon_calls_per_minute >= 0 && var.polygon_calls_per_minute <= 60000 && floor(var.polygon_calls_per_minute) == var.polygon_calls_per_minute
    error_message = "polygon_calls_per_minute must be a whole number from 0 (no pacing) to 60000."
  }
}

variable "polygon_earnings_per_run" {
  description = "Symbols whose quarterly earnings the ingest asks of Polygon in one run, the least recently tried first (POLYGON_EARNINGS_PER_RUN): its financials endpoint is per ticker, one request each at the pace above; 0 for no limit."
  type        = number
  default     = 25

  validation {
    condition     = var.polygon_earnings_per_run >= 0 && var.polygon_earnings_per_run <= 100000 && floor(var.polygon_earnings_per_run) == var.polygon_earnings_per_run
    error_message = "polygon_earnings_per_run must be a whole number from 0 (no limit) to 100000."
  }
}

variable "polygon_max_retries" {
  description = "Retries of a throttled (429), failed (5xx) or garbled answer before the request is given up for the run (POLYGON_MAX_RETRIES)."
  type        = number
  default     = 3

  validation {
    condition     = var.polygon_max_retries >= 0 && var.polygon_max_retries <= 10 && floor(var.polygon_max_retries) == var.polygon_max_retries
    error_message = "polygon_max_retries must be a whole number from 0 to 10."
  }
}

variable "polygon_backoff_seconds" {
  description = "First wait before a retry, doubled each time, each at most 120 s (POLYGON_BACKOFF_SECONDS)."
  type        = number
  default     = 15

  validation {
    condition     = var.polygon_backoff_seconds >= 0 && var.polygon_backoff_seconds <= 120
    error_message = "polygon_backoff_seconds must be between 0 and 120."
  }
}

# -- ingest Lambda -------------------------------------------------------------------------

variable "lambda_timeout_seconds" {
  description = "Ingest Lambda timeout. Before each request the code stops when less than the limiter's wait + one request's worst case + 15 s is left (about 250 s with either provider's default retries); a precondition checks the timeout leaves a minute beyond that. What is left waits for the next run, oldest first."
  type        = number
  default     = 900

  validation {
    condition     = var.lambda_timeout_seconds >= 60 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds must be 60-900 (Lambda stops at 900); the ingest resource checks it against the time budget."
  }
}

variable "lambda_memory_mb" {
  description = "Ingest Lambda memory (pandas and pyarrow are imported)."
  type        = number
  default     = 512

  validation {
    condition     = var.lambda_memory_mb >= 256 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be between 256 and 10240."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the ingest Lambda; null (the default) reserves none. Overlapping runs are safe without it: state is written with S3 conditional writes (If-Match / If-None-Match), so a second run loses the write and retries instead of overwriting. Lambda keeps at least 100 executions unreserved, so an account whose concurrency limit is 10 (new accounts) cannot reserve any; make plan/deploy check the account before Terraform runs."
  type        = number
  default     = null

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency, false)
    error_message = "lambda_reserved_concurrency must be null (no reservation) or a whole number of at least 1."
  }
}

variable "sdk_pandas_layer_arn" {
  description = "ARN of the AWS SDK for pandas layer (pandas, numpy, pyarrow) for Python 3.13 x86_64; empty builds arn:<partition>:lambda:<region>:336392948345:layer:AWSSDKPandas-Python313:<sdk_pandas_layer_version>. Regions whose layer lives in another account (ap-east-1, eu-south-1, the China regions, ...) must set it: copy it from the AWS SDK for pandas 'Layers' page."
  type        = string
  default     = ""

  validation {
    condition     = var.sdk_pandas_layer_arn == "" || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.sdk_pandas_layer_arn))
    error_message = "sdk_pandas_layer_arn must be empty or a Lambda layer version ARN."
  }
}

variable "sdk_pandas_layer_version" {
  description = "Version of arn:aws:lambda:<region>:336392948345:layer:AWSSDKPandas-Python313. It differs by region: 14 is AWS SDK for pandas 3.17.0 in us-east-1 and most regions (af-south-1: 13); see its 'Layers' page (https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html)."
  type        = number
  default     = 14

  validation {
    condition     = var.sdk_pandas_layer_version >= 1 && floor(var.sdk_pandas_layer_version) == var.sdk_pandas_layer_version
    error_message = "sdk_pandas_layer_version must be a whole number of at least 1."
  }
}

variable "powertools_layer_arn" {
  description = "ARN of the Powertools for AWS Lambda (Python) v3 layer for Python 3.13 x86_64; empty builds it from region and powertools_layer_version (GovCloud and China publish it from other accounts: set the ARN there)."
  type        = string
  default     = ""

  validation {
    condition     = var.powertools_layer_arn == "" || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.powertools_layer_arn))
    error_message = "powertools_layer_arn must be empty or a Lambda layer version ARN."
  }
}

variable "powertools_layer_version" {
  description = "Version of arn:aws:lambda:<region>:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64, the same in every commercial region (Powertools 'Installation' page: https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/)."
  type        = number
  default     = 37

  validation {
    condition     = var.powertools_layer_version >= 1 && floor(var.powertools_layer_version) == var.powertools_layer_version
    error_message = "powertools_layer_version must be a whole number of at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the ingest Lambda's CloudWatch log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, ..., 3653)."
  }
}

# -- build (Glue Python shell job) ----------------------------------------------------------

variable "glue_max_capacity" {
  description = "DPUs of the WAP Python shell job: 0.0625 (1 GB memory) or 1 (16 GB)."
  type        = number
  default     = 0.0625

  validation {
    condition     = contains([0.0625, 1], var.glue_max_capacity)
    error_message = "glue_max_capacity must be 0.0625 or 1 (the only values a Python shell job takes)."
  }
}

variable "glue_job_timeout_minutes" {
  description = "Timeout of one WAP job run, in minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.glue_job_timeout_minutes >= 5 && var.glue_job_timeout_minutes <= 2880
    error_message = "glue_job_timeout_minutes must be between 5 and 2880."
  }
}

variable "max_bad_row_pct" {
  description = "Share of a run's new rows the row checks may exclude before the build blocks (--max_bad_row_pct)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_bad_row_pct >= 0 && var.max_bad_row_pct <= 100
    error_message = "max_bad_row_pct must be between 0 and 100."
  }
}

variable "keep_versions" {
  description = "Published versions of daily_prices the build keeps for rollback (--keep_versions); older ones it deletes."
  type        = number
  default     = 5

  validation {
    condition     = var.keep_versions >= 1 && floor(var.keep_versions) == var.keep_versions
    error_message = "keep_versions must be a whole number of at least 1."
  }
}

# -- storage and Athena --------------------------------------------------------------------

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete the buckets with everything in them (every object version). Set true, apply, then destroy."
  type        = bool
  default     = false
}

variable "athena_bytes_scanned_cutoff" {
  description = "Per-query bytes-scanned cutoff of the workgroup (Athena's minimum is 10 MB)."
  type        = number
  default     = 10737418240 # 10 GiB

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10485760 (10 MB)."
  }
}

variable "athena_build_bytes_scanned_cutoff" {
  description = "Per-query bytes-scanned cutoff of the build's workgroup: a full rebuild reads all raw CSV."
  type        = number
  default     = 107374182400 # 100 GiB

  validation {
    condition     = var.athena_build_bytes_scanned_cutoff >= 10485760
    error_message = "athena_build_bytes_scanned_cutoff must be at least 10485760 (10 MB)."
  }
}

variable "athena_results_expiration_days" {
  description = "Days before Athena query results expire in the results bucket."
  type        = number
  default     = 7

  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "athena_results_expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version is kept (the build deletes old curated versions; versioning keeps them this long)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

# -- alerts --------------------------------------------------------------------------------

variable "alert_email" {
  description = "Email subscribed to the alerts topic (confirm the mail AWS sends); empty for none."
  type        = string
  default     = ""

  validation {
    condition     = var.alert_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be empty or an email address."
  }
}

# -- Grafana -------------------------------------------------------------------------------

variable "create_grafana" {
  description = "Create an Amazon Managed Grafana workspace (needs IAM Identity Center in the account) with the Athena data source and the dashboards."
  type        = bool
  default     = false
}

variable "grafana_admin_user_ids" {
  description = "IAM Identity Center user ids made ADMIN of the managed workspace (create_grafana = true)."
  type        = list(string)
  default     = []
}

variable "grafana_url" {
  description = "URL of an existing Grafana to provision instead (create_grafana = false); empty for none. Its token goes to the Grafana stack: export TF_VAR_grafana_auth."
  type        = string
  default     = ""

  validation {
    condition     = var.grafana_url == "" || can(regex("^https?://", var.grafana_url))
    error_message = "grafana_url must be empty or start with http:// or https://."
  }
}

variable "grafana_athena_auth_type" {
  description = "authType of the Athena data source: empty picks ec2_iam_role (the workspace role) on Amazon Managed Grafana and default (the AWS SDK chain) elsewhere."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "ec2_iam_role", "default", "keys", "credentials"], var.grafana_athena_auth_type)
    error_message = "grafana_athena_auth_type must be empty, ec2_iam_role, default, keys or credentials."
  }
}

variable "grafana_datasource_uid" {
  description = "uid of the Athena data source; the dashboards in grafana/dashboards/ refer to it."
  type        = string
  default     = "marketlake-athena"
}

variable "grafana_athena_plugin_version" {
  description = "Version of the grafana-athena-datasource plugin make deploy installs in the managed workspace (create_grafana = true); it must support the workspace's Grafana 10.4 (3.x declares >= 10.4.0)."
  type        = string
  default     = "3.1.10"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.grafana_athena_plugin_version))
    error_message = "grafana_athena_plugin_version must be a release version x.y.z, e.g. 3.1.10."
  }
}

variable "kms_rotation_period_days" {
  description = "Days between automatic rotations of the project key's material (90 to 2560). The default, the longest KMS allows, keeps the key at 1 USD a month: each of a key's first two rotations adds 1 USD a month for good (AWS KMS pricing). The key protects public market data and the vendor API key; set 365 for yearly rotation, at up to 2 USD a month more."
  type        = number
  default     = 2560

  validation {
    condition     = var.kms_rotation_period_days >= 90 && var.kms_rotation_period_days <= 2560 && floor(var.kms_rotation_period_days) == var.kms_rotation_period_days
    error_message = "kms_rotation_period_days must be a whole number of days from 90 to 2560 (what AWS KMS accepts)."
  }
}
