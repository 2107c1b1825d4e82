# The Alpha Vantage key. Terraform creates the secret but never its value, so no key ever
# sits in Terraform state or in a file. Set it once after `make deploy`:
#   aws secretsmanager put-secret-value --secret-id <output alphavantage_secret_arn> \
#     --secret-string 'YOUR_KEY'
# (a JSON body {"ALPHAVANTAGE_API_KEY": "..."} works too; see marketlake.aws.lambda_ingest).

resource "aws_secretsmanager_secret" "alphavantage" {
  name                    = "${local.name}/alphavantage-api-key"
  description             = "Alpha Vantage API key read by the ${local.function_name} Lambda; set its value with aws secretsmanager put-secret-value."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}
