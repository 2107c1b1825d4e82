# The vendors' keys. Terraform creates each secret but never its value, so no key ever sits
# in Terraform state or in a file. Set the value once after `make deploy`:
#   aws secretsmanager put-secret-value --secret-id <output alphavantage_secret_arn> \
#     --secret-string 'YOUR_KEY'
# (a JSON body {"ALPHAVANTAGE_API_KEY": "..."} works too; see marketlake.aws.lambda_ingest).

resource "aws_secretsmanager_secret" "alphavantage" {
  name                    = "${local.name}/alphavantage-api-key"
  description             = "Alpha Vantage API key read by the ${local.function_name} Lambda; set its value with aws secretsmanager put-secret-value."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

# The Polygon (Massive) key, only with data_provider = "polygon": a secret costs 0.40 USD a
# month, and an Alpha Vantage deployment stays exactly as it was. Set it the same way:
#   aws secretsmanager put-secret-value --secret-id <output polygon_secret_arn> \
#     --secret-string 'YOUR_KEY'
# (or {"POLYGON_API_KEY": "..."}). Switching back to alphavantage deletes it at once: a
# recovery window would hold its name, and the next switch to polygon could not create it
# again. The key itself stays in the vendor's dashboard.
resource "aws_secretsmanager_secret" "polygon" {
  count = var.data_provider == "polygon" ? 1 : 0

  name                    = "${local.name}/polygon-api-key"
  description             = "Polygon (Massive) API key read by the ${local.function_name} Lambda; set its value with aws secretsmanager put-secret-value."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 0
}

locals {
  # The secret the Lambda reads its key from (the chosen provider's); its role may read no
  # other.
  api_key_secret_arn = var.data_provider == "polygon" ? one(aws_secretsmanager_secret.polygon[*].arn) : aws_secretsmanager_secret.alphavantage.arn
}
