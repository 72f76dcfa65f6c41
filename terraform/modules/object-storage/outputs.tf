output "bucket" {
  description = "Bucket name."
  value       = aws_s3_bucket.media.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.media.arn
}

output "kms_key_arn" {
  description = "KMS key that encrypts the objects (services need kms:Decrypt/GenerateDataKey on it)."
  value       = aws_kms_key.media.arn
}
