provider "aws" {
  region = var.region
  default_tags {
    tags = {
      "app.kubernetes.io/part-of" = "creatormesh"
      "managed-by"                = "terraform"
    }
  }
}

module "platform" {
  source            = "../../modules/platform"
  environment       = "staging"
  subnet_ids        = var.subnet_ids
  cpu_nodes         = { min = 2, max = 6, desired = 2 }
  gpu_nodes         = { min = 0, max = 2, desired = 1 }
  gpu_capacity_type = "SPOT"
  media_bucket      = "creatormesh-staging-media"
  log_bucket        = var.log_bucket
}

output "platform" {
  description = "Cluster, registries, media bucket and service roles of staging."
  value       = module.platform
}
