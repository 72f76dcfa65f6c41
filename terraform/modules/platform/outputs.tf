output "cluster_name" {
  description = "EKS cluster name."
  value       = module.cluster.name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = module.cluster.endpoint
}

output "repository_urls" {
  description = "Image repository by service."
  value       = module.registry.repository_urls
}

output "media_bucket" {
  description = "Media bucket (global.objectStorage.bucket in the chart's values)."
  value       = module.media.bucket
}

output "service_account_roles" {
  description = "IAM role ARN by service (services.<name>.serviceAccountAnnotations in the chart's values)."
  value       = { for name, role in module.media_roles : name => role.arn }
}
